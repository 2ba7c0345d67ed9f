import { SessionError } from './errors.js'
import { generateId } from './ids.js'
import type { LifecycleCounters, Notify } from './lifecycle.js'
import type { ValueLimits } from './kit/limits.js'
import { LIVE, type SessionPolicy } from './policy.js'
import type { RenewedState, SessionHost } from './session.js'
import { SessionState } from './state.js'
import type { CarriedSession, Identity, SessionCarrier, SessionRequest, SessionResponse } from './types.js'

/** What the sessions that travel with their request need of the manager. */
export interface CarriedContext {
  readonly policy: SessionPolicy
  /** What a value may be (`maxSessionBytes`; a cookie has no storage limits of its own beyond its size). */
  readonly limits: ValueLimits
  readonly counters: LifecycleCounters
  readonly notify: Notify
  /** A carried session was found past a deadline. */
  expired(id: string): void
  /** Throws `SESSION_CLOSED` once the manager is closed. */
  assertOpen(): void
}

/** A carried session found in a request, ready for a `Session`. */
export interface CarriedOpening {
  readonly host: CarriedHost
  readonly state: SessionState
}

/**
 * The live session that `identity`'s carrier finds in `req` at `now`, its deadlines checked
 * under the current configuration (see {@link carriedState}), or `undefined`. A session sealed
 * with an older key, or whose idle deadline is due to move (`touchAfter`), is sealed again on
 * `res` at once; if that cannot be done (the headers are sent, it no longer fits), the client
 * keeps the cookie it has.
 * @internal
 */
export function openCarried(
  context: CarriedContext,
  identity: Identity,
  carrier: SessionCarrier,
  req: SessionRequest,
  res: SessionResponse,
  now: number,
): CarriedOpening | undefined {
  const { policy } = context
  let state: SessionState | undefined
  const opened = carrier.open(req, (session) => {
    const candidate = carriedState(session, policy, identity.name)
    if (policy.status(candidate, now) === LIVE) {
      state = candidate
      return true
    }
    context.expired(session.id)
    return false
  })
  if (opened === undefined || state === undefined) return undefined
  const host = new CarriedHost(context, carrier, req, res)
  if (opened.olderKey || policy.touchDue(state, now) !== undefined) host.refresh(state, now)
  return { host, state }
}

/**
 * The state of a carried session, its deadlines the earlier of what was sealed and what the
 * current configuration gives from its sealed timestamps: a `maxAge` or `absoluteMaxAge`
 * shortened since the cookie was sealed applies to it at once.
 * @internal
 */
export function carriedState(session: CarriedSession, policy: SessionPolicy, issuer: string): SessionState {
  const configured = policy.absoluteDeadline(session.createdAt)
  const sealed = session.absoluteExpiresAt
  const absolute = sealed === 0 ? configured : configured === 0 ? sealed : Math.min(sealed, configured)
  const idle = Math.min(session.expiresAt, policy.deadline(absolute, session.touchedAt))
  const state = new SessionState(session.id, session.data, session.createdAt, idle, absolute)
  state.version = session.version
  state.issuer = issuer
  return state
}

/**
 * The {@link SessionHost} of one request's carried session: every change is sealed onto the
 * response at once (so its promise is already settled), nothing is cached or stored. A change
 * that cannot be sealed (`SESSION_TOO_LARGE`, `SESSION_HEADERS_SENT`) throws before the
 * response or the session changes. Each change moves the idle deadline, as an access does.
 * @internal
 */
export class CarriedHost implements SessionHost {
  readonly versioned = false
  /** A session carried by its cookie is in no storage, so in no principal's index. */
  readonly principals = undefined
  readonly policy: SessionPolicy
  readonly limits: ValueLimits
  readonly #context: CarriedContext
  readonly #carrier: SessionCarrier
  /** The data and version last sealed onto this response, so a repeated write of them seals nothing. */
  #sealedData: object | undefined = undefined
  #sealedVersion = -1
  readonly #req: SessionRequest
  readonly #res: SessionResponse

  constructor(context: CarriedContext, carrier: SessionCarrier, req: SessionRequest, res: SessionResponse) {
    this.#context = context
    this.policy = context.policy
    this.limits = context.limits
    this.#carrier = carrier
    this.#req = req
    this.#res = res
  }

  assertOpen(): void {
    this.#context.assertOpen()
  }

  assertWritable(): void {
    this.#context.assertOpen()
  }

  latest(state: SessionState): SessionState {
    return state
  }

  create(state: SessionState): Promise<void> {
    this.#seal(state, state.createdAt, state.expiresAt)
    this.#context.counters.created++
    this.#context.notify('create', state.id)
    return RESOLVED
  }

  write(state: SessionState): Promise<void> {
    const now = this.policy.now()
    const expiresAt = this.policy.deadline(state.absoluteExpiresAt, now)
    // One change can arrive as several writes of one state (clear() removes key by key): the
    // cookie already holds this data, version and deadline, so it is sealed once, not per key.
    if (state.data === this.#sealedData && state.version === this.#sealedVersion && expiresAt === state.expiresAt) return RESOLVED
    this.#seal(state, now, expiresAt)
    return RESOLVED
  }

  renew(old: SessionState): RenewedState {
    const now = this.policy.now()
    const state = new SessionState(generateId(), old.data, old.createdAt, this.policy.deadline(old.absoluteExpiresAt, now), old.absoluteExpiresAt)
    state.bytes = old.bytes
    state.issuer = old.issuer
    state.version = old.version
    this.#seal(state, now, state.expiresAt)
    old.renewed = true
    this.#context.counters.renewed++
    this.#context.notify('renew', state.id, old.id)
    return { state, stored: RESOLVED }
  }

  destroy(state: SessionState): Promise<void> {
    this.#context.assertOpen()
    // Nothing on the server can end a carried session: only clearing the cookie does, so it must still be possible.
    if (this.#res.headersSent) {
      throw new SessionError(
        'SESSION_HEADERS_SENT',
        'the response headers were already sent, so the session cookie cannot be cleared; destroy before responding',
        {
          sessionId: state.id,
        },
      )
    }
    state.destroyed = true
    this.#context.counters.destroyed++
    this.#context.notify('destroy', state.id)
    return RESOLVED
  }

  /** Seal `state` again with its deadline moved to now (a newer key, `touchAfter` passed); a failure leaves the client's cookie as it is. */
  refresh(state: SessionState, now: number): void {
    try {
      this.#seal(state, now, this.policy.deadline(state.absoluteExpiresAt, now), state.version)
    } catch {
      // Headers already sent or no longer within maxBytes: the cookie the client has stays valid until its deadline.
    }
  }

  /** Seal `state`'s data as version `version` (the next one by default) touched at `touchedAt`; only once that worked is `state` updated. */
  #seal(state: SessionState, touchedAt: number, expiresAt: number, version = state.version + 1): void {
    this.#carrier.seal(this.#req, this.#res, {
      id: state.id,
      data: state.data,
      createdAt: state.createdAt,
      touchedAt,
      expiresAt,
      absoluteExpiresAt: state.absoluteExpiresAt,
      version,
    })
    state.expiresAt = expiresAt
    state.version = version
    this.#sealedData = state.data
    this.#sealedVersion = version
  }
}

const RESOLVED: Promise<void> = Promise.resolve()
