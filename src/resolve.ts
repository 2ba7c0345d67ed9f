import { PROBE, TRUSTED, type Check } from './coherence.js'
import { storageUnavailable } from './errors.js'
import { ABSOLUTE_EXPIRED, LIVE, type SessionPolicy } from './policy.js'
import type { SessionCache } from './session-cache.js'
import type { SessionState } from './state.js'
import type { Identity, SessionCarrier, SessionRequest, SessionResponse } from './types.js'

/** What resolving a request's session needs of the manager. */
export interface ResolveContext<S> {
  readonly cache: SessionCache
  readonly policy: SessionPolicy
  /** Counters: a request served from the cache, one that had to read the storage. */
  readonly counters: { hits: number; misses: number }
  /** Read `id` from the storage into the cache (see `SessionLifecycle.read`). */
  read(id: string): Promise<SessionState | undefined>
  /** A cached session was found past its absolute deadline, or gone from storage. */
  expired(id: string): void
  /** Whether cached copies are ever checked (other processes share the storage); when false, {@link ResolveContext.check} is never called. */
  readonly checks: boolean
  /** Whether the cached `state` can be served as it is to a client holding `clientVersion` of it (see `Coherence.check`). */
  check(state: SessionState, clientVersion: number | undefined, now: number, fresh: boolean): Check
  /** The version of `id` in storage, `undefined` when it has none (see `Coherence.probe`). */
  probe(id: string): Promise<number | undefined>
  /** What a check that found the cached copy stale (`stale`) or revoked elsewhere (`gone`), or that failed (`failed`, with its error), did. */
  checked(id: string, outcome: 'stale' | 'gone' | 'failed', error?: unknown): void
  /** Whether a session issued through the identity named `issuer` may be opened through the one named `identity` (another name: the manager's `shareSessions`). */
  shares(issuer: string, identity: string): boolean
  /** The live session `identity`'s carrier finds in the request (a sealed cookie), or `undefined`. */
  carry(identity: Identity, carrier: SessionCarrier, req: SessionRequest, res: SessionResponse, now: number): S | undefined
  /** The session object for the request: `state` through `identity`, or a new one (`state` undefined). */
  open(state: SessionState | undefined, identity: Identity | undefined, req: SessionRequest, res: SessionResponse, now: number): S
}

/**
 * The session of a request. Identities are asked in order, each for its candidate ids, best
 * first; the first candidate with a live session wins. A candidate cached and live is served at
 * once, without a promise; one that is not cached (or past its idle deadline here, which another
 * process may have extended) is read from the storage, and the walk goes on after it if the
 * storage has none. A cached copy that other processes may have changed is checked first (see
 * `Coherence.check`). A revoked id or one past its absolute deadline is skipped, and so is a
 * session issued through another identity (unless the manager lets the two share sessions): a
 * credential renamed or moved to another identity opens nothing. An identity that carries the
 * whole session (a sealed cookie) is asked for it instead of ids: no cache, no storage. When no
 * candidate wins, the request gets a new session through the first identity in scope.
 * @internal
 */
export function resolveSession<S>(
  context: ResolveContext<S>,
  identities: readonly Identity[],
  req: SessionRequest,
  res: SessionResponse,
  fresh: boolean,
): S | Promise<S> {
  return walk(context, { identities, req, res, fresh, identity: 0, ids: undefined, candidate: 0, first: undefined, missed: false })
}

interface Walk {
  readonly identities: readonly Identity[]
  readonly req: SessionRequest
  readonly res: SessionResponse
  /** Check every cached copy with the storage before serving it. */
  readonly fresh: boolean
  /** Index of the identity being asked. */
  identity: number
  /** Its candidates, once asked. */
  ids: readonly string[] | undefined
  /** Index of the next candidate. */
  candidate: number
  /** The first identity in scope: the one a new session answers through. */
  first: Identity | undefined
  /** Whether the storage was read for this request (counted once). */
  missed: boolean
}

function walk<S>(context: ResolveContext<S>, at: Walk): S | Promise<S> {
  const { cache, policy } = context
  const now = policy.now()
  for (; at.identity < at.identities.length; at.identity++, at.ids = undefined, at.candidate = 0) {
    const identity = at.identities[at.identity]!
    if (at.ids === undefined) {
      if (!identity.matches(at.req)) continue
      at.first ??= identity
      const carrier = identity.carrier
      if (carrier !== undefined) {
        // The session travels with the request: nothing to look up.
        const carried = context.carry(identity, carrier, at.req, at.res, now)
        if (carried !== undefined) return carried
        continue
      }
      at.ids = identity.get(at.req)
    }
    while (at.candidate < at.ids.length) {
      const id = at.ids[at.candidate++]!
      const state = cache.use(id)
      if (state !== undefined) {
        if (!accepts(context, state, identity)) continue
        const status = policy.status(state, now)
        if (status === LIVE) {
          const check = context.checks ? context.check(state, identity.versionOf?.(at.req, id), now, at.fresh) : TRUSTED
          if (check === TRUSTED) {
            if (!at.missed) context.counters.hits++
            return context.open(state, identity, at.req, at.res, now)
          }
          return checkThenWalk(context, at, state, identity, check)
        }
        cache.drop(id)
        if (status === ABSOLUTE_EXPIRED) {
          context.expired(id)
          continue
        }
        // Past its idle deadline here, but another process may have kept it alive: ask the storage.
        return readThenWalk(context, at, id, identity, true)
      }
      if (cache.isRevoked(id)) continue
      return readThenWalk(context, at, id, identity, false)
    }
  }
  return context.open(undefined, at.first, at.req, at.res, now)
}

/** Check a cached copy with the storage (or reload it: the client holds a newer version), then serve it or go on. */
async function checkThenWalk<S>(context: ResolveContext<S>, at: Walk, state: SessionState, identity: Identity, check: Check): Promise<S> {
  const id = state.id
  if (check === PROBE) {
    let version: number | undefined
    try {
      version = await context.probe(id)
    } catch (err) {
      if (at.fresh) {
        throw storageUnavailable('SESSION_STORAGE_UNAVAILABLE', 'a session could not be checked for a fresh read', err, id)
      }
      // The storage cannot say: serve the copy as last validated (availability over a bound that cannot be checked now).
      context.checked(id, 'failed', err)
      return serveIfLive(context, at, state, identity)
    }
    if (version === state.version || (version !== undefined && version < state.version)) {
      state.validatedAt = context.policy.now()
      return serveIfLive(context, at, state, identity)
    }
    if (version === undefined) {
      context.checked(id, 'gone')
      return walk(context, at)
    }
  }
  context.checked(id, 'stale')
  return readThenWalk(context, at, id, identity, false)
}

function serveIfLive<S>(context: ResolveContext<S>, at: Walk, state: SessionState, identity: Identity): S | Promise<S> {
  const now = context.policy.now()
  if (context.policy.status(state, now) === LIVE && !state.destroyed) return context.open(state, identity, at.req, at.res, now)
  return walk(context, at)
}

async function readThenWalk<S>(context: ResolveContext<S>, at: Walk, id: string, identity: Identity, staleCopy: boolean): Promise<S> {
  if (!at.missed) {
    at.missed = true
    context.counters.misses++
  }
  const state = await context.read(id)
  if (state !== undefined) {
    const now = context.policy.now()
    if (context.policy.status(state, now) === LIVE && accepts(context, state, identity)) return context.open(state, identity, at.req, at.res, now)
  } else if (staleCopy) {
    context.expired(id)
  }
  return walk(context, at)
}

/** Whether `state` may be opened through `identity`: issued by it, by one it shares sessions with, or by no recorded identity (a record from before issuers were kept). */
function accepts<S>(context: ResolveContext<S>, state: SessionState, identity: Identity): boolean {
  const issuer = state.issuer
  return issuer === undefined || issuer === identity.name || context.shares(issuer, identity.name)
}

/**
 * The manager's `shareSessions` option checked: groups of identity names whose sessions open
 * through any identity of the group. Answers whether a session issued through `issuer` opens
 * through `identity`. A `TypeError` names the option when it is not an array of arrays of
 * identity names.
 * @internal
 */
export function sessionSharing(groups: unknown): (issuer: string, identity: string) => boolean {
  if (groups === undefined) return never
  const problem = 'SessionManager option "shareSessions" must be an array of groups, each an array of two or more identity names'
  if (!Array.isArray(groups)) throw new TypeError(problem)
  const shared = new Map<string, Set<string>>()
  for (const group of groups as unknown[]) {
    if (!Array.isArray(group) || group.length < 2 || group.some((name) => typeof name !== 'string' || name.length === 0)) throw new TypeError(problem)
    for (const name of group as string[]) {
      const others = shared.get(name) ?? new Set<string>()
      for (const other of group as string[]) others.add(other)
      shared.set(name, others)
    }
  }
  if (shared.size === 0) return never
  return (issuer, identity) => shared.get(issuer)?.has(identity) === true
}

function never(): boolean {
  return false
}
