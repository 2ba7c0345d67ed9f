import { SessionError, storageUnavailable } from './errors.js'
import { MAX_PRINCIPAL_LENGTH, type PrincipalChange, type PrincipalSession } from './kit/contract.js'
import { isPrincipal } from './kit/record.js'
import { messageOf } from './kit/errors.js'
import type { SessionState } from './state.js'
import type { SessionData, Storage } from './types.js'

/**
 * What a session belongs to (a user id), for the manager's `principal` option: the name of a
 * data key whose value (a string or a number) is the principal, or a function of the data that
 * returns it (`undefined` for none).
 *
 * @example
 * ```ts
 * new SessionManager({ storage, principal: 'userId' })
 * new SessionManager<{ user?: { id: number } }>({ storage, principal: (data) => data.user?.id })
 * ```
 */
export type PrincipalOption<D extends object = SessionData> = string | ((data: Readonly<D>) => string | number | undefined)

/**
 * How the manager derives each session's principal from its data, and what a write does to it.
 * A key principal is worked out only by writes of that key; a function principal by every write.
 * @internal
 */
export class PrincipalIndex {
  /** The data key that holds the principal; `undefined` for a function principal. */
  readonly key: string | undefined
  readonly #derive: ((data: SessionData) => unknown) | undefined

  constructor(option: PrincipalOption<never>) {
    if (typeof option === 'string') {
      this.key = option
      this.#derive = undefined
    } else {
      this.key = undefined
      this.#derive = option as (data: SessionData) => unknown
    }
  }

  /** Whether a write of `key` can change the principal. */
  affects(key: string): boolean {
    return this.key === undefined || this.key === key
  }

  /**
   * The principal of `data`, as the storage indexes it (a number as its decimal text), or
   * `undefined` for none. Throws a `TypeError` when the function returns something else than a
   * string, a number or `undefined`, and `SESSION_INVALID_VALUE` for text that cannot be a
   * principal; the function's own error when it throws.
   */
  of(data: SessionData): string | undefined {
    const key = this.key
    if (key !== undefined) {
      const value = Object.hasOwn(data, key) ? data[key] : undefined
      if (value === undefined || value === null) return undefined
      if (typeof value !== 'string' && typeof value !== 'number') {
        throw new SessionError(
          'SESSION_INVALID_VALUE',
          `"${key}" is the principal of the session: its value must be a string or a number, got ${describe(value)}`,
        )
      }
      return principalText(value, `the value of "${key}" (the principal)`)
    }
    const value = this.#derive!(data)
    if (value === undefined) return undefined
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new TypeError(`SessionManager option "principal" must return a string, a number or undefined, got ${describe(value)}`)
    }
    return principalText(value, 'what the principal function returned')
  }

  /** What writing `data` to `state` does to its principal: `undefined` when it stays as it is. */
  change(state: SessionState, data: SessionData): PrincipalChange {
    const next = this.of(data)
    if (next === state.principal) return undefined
    return next ?? null
  }
}

/**
 * `value` as principal text: a number as `String(n)`; `SESSION_INVALID_VALUE` (saying `what` it
 * is) when it is not well-formed text of 1 to 255 characters or not a finite number.
 * @internal
 */
export function principalText(value: string | number, what: string): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new SessionError('SESSION_INVALID_VALUE', `${what} must be a finite number, got ${value}`)
    return String(value)
  }
  if (!isPrincipal(value)) {
    throw new SessionError('SESSION_INVALID_VALUE', `${what} must be well-formed text of 1 to ${MAX_PRINCIPAL_LENGTH} characters`)
  }
  return value
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`
}

/**
 * The principal `value` a caller of `sessionsOf` or `revokeSessionsOf` named, as text; a `TypeError` for another type.
 * @internal
 */
export function principalArgument(value: unknown, method: string): string {
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new TypeError(`manager.${method}(value) takes the principal as a string or a number, got ${describe(value)}`)
  }
  return principalText(value, `manager.${method}(value)`)
}

/**
 * What {@link PrincipalSessions} needs of the manager: the bounded storage, the clock, and the
 * destroy path (cache revoke, storage delete retried in the background, bus publish).
 * @internal
 */
export interface PrincipalHost {
  readonly storage: Storage
  now(): number
  /** Whether this process revoked `id` (destroyed or renewed away, its delete maybe still pending). */
  isRevoked(id: string): boolean
  /** Destroy `id` as `session.destroy()` does, whether or not this process has it cached. */
  revoke(id: string, version: number): Promise<void>
  /** Report a failure nobody waits for on the manager's `error` event. */
  report(error: SessionError): void
}

/**
 * Listing and revoking the sessions of one principal, and keeping a principal to at most
 * `maxSessionsPerPrincipal` live sessions.
 * @internal
 */
export class PrincipalSessions {
  readonly #host: PrincipalHost
  readonly #max: number

  constructor(host: PrincipalHost, max: number) {
    this.#host = host
    this.#max = max
  }

  /** The live sessions of `principal`, oldest first; `SESSION_STORAGE_UNAVAILABLE` when the storage cannot list them. */
  async list(principal: string): Promise<PrincipalSession[]> {
    const storage = this.#host.storage
    let found: PrincipalSession[]
    try {
      if (typeof storage.findByPrincipal !== 'function') throw new TypeError(`the ${storage.name} storage has no findByPrincipal`)
      found = await storage.findByPrincipal(principal)
    } catch (err) {
      throw storageUnavailable('SESSION_STORAGE_UNAVAILABLE', 'the sessions of a principal could not be listed', err)
    }
    const now = this.#host.now()
    return found.filter(
      (session) => session.expiresAt > now && (session.absoluteExpiresAt === undefined || session.absoluteExpiresAt > now) && !this.#host.isRevoked(session.id),
    )
  }

  /** Destroy every live session of `principal` but `except`; resolves to how many, rejects with the first failure once all were tried. */
  async revoke(principal: string, except: string | undefined): Promise<number> {
    const sessions = (await this.list(principal)).filter((session) => session.id !== except)
    return this.#revokeAll(sessions)
  }

  /**
   * A write that gave `id` the principal `principal` was acknowledged: revoke the oldest sessions
   * of `principal` beyond the most allowed, never `id` (it counts as the newest). Failures are
   * reported on `error`; the write stays acknowledged.
   */
  async enforce(principal: string, id: string): Promise<void> {
    if (this.#host.isRevoked(id)) return // revoked meanwhile (by a concurrent login of the same principal, say)
    try {
      const others = (await this.list(principal)).filter((session) => session.id !== id)
      const excess = others.length - (this.#max - 1)
      if (excess <= 0) return
      const oldest = others.sort((a, b) => a.createdAt - b.createdAt).slice(0, excess)
      await this.#revokeAll(oldest)
    } catch (err) {
      const error =
        err instanceof SessionError
          ? err
          : new SessionError('SESSION_STORAGE_ERROR', `maxSessionsPerPrincipal could not be kept: ${messageOf(err)}`, { cause: err })
      this.#host.report(error)
    }
  }

  async #revokeAll(sessions: readonly PrincipalSession[]): Promise<number> {
    const outcomes = await Promise.allSettled(sessions.map((session) => this.#host.revoke(session.id, session.version)))
    const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    return sessions.length
  }
}
