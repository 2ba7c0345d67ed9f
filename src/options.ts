import type { InvalidationBus } from './bus.js'
import { MAX_ISSUER_LENGTH } from './kit/contract.js'
import { knownOptionsCheck, optionNames } from './kit/options.js'
import { sessionSharing } from './resolve.js'
import { capabilitiesOf } from './kit/contract.js'
import { PrincipalIndex, type PrincipalOption } from './principals.js'
import type { Identity, SessionData, Storage } from './types.js'
import type { WriteQueueOptions } from './write-queue.js'

/** Options of {@link SessionManager}. Durations are in seconds, as in ee-session. */
export interface SessionManagerOptions<D extends object = SessionData> {
  /** Where sessions persist. Default: a {@link MemoryStorage}, with a one-time warning. */
  storage?: Storage
  /**
   * Identities, asked in this order. Default: one unsigned `CookieIdentity` named `sid`. Each has
   * its own `name`: a session is bound to the identity that issued it, and opens through no
   * other (see `shareSessions`).
   */
  identities?: readonly Identity[]
  /**
   * Groups of identity names whose sessions open through any identity of the group. A session
   * opens only through the identity that issued it (its `name`, kept in the stored record): a
   * cookie session sent as a header token, or a cookie renamed to another identity's name, opens
   * nothing and the client gets a new session. List here the identities meant to carry the same
   * sessions, e.g. `[['cookie:sid', 'header:x-session-token']]` for a web app whose pages hand
   * their session to an API client. Sessions stored without an issuer (before it was recorded)
   * open through any identity. Default: none shared.
   */
  shareSessions?: ReadonlyArray<readonly string[]>
  /** Sessions held in this process's LRU cache. Default 100_000. */
  cacheLimit?: number
  /**
   * A bound on the bytes of the sessions held in this process's LRU cache, beside `cacheLimit`:
   * the least recently used sessions are evicted once the sum is over it. A session counts as
   * its serialized size (the JSON bytes the write path already works out, measured once when a
   * session is loaded) plus 512 bytes for the entry itself; its heap is larger than that,
   * about twice the JSON for object-heavy data (see docs/reliability.md). At least
   * `maxSessionBytes`. Default none: the count bounds the cache alone.
   *
   * @example
   * ```ts
   * new SessionManager({ storage, cacheLimit: 100_000, cacheMaxBytes: 256 * 1024 * 1024 })
   * ```
   */
  cacheMaxBytes?: number
  /** Seconds a session stays cached without being used. Default 3600. */
  cacheMaxAge?: number
  /**
   * Idle expiry in seconds; slides on access. A stored idle deadline further than `maxAge` from
   * now (written by a process with a skewed clock, or under a larger `maxAge`) is brought back
   * to now plus `maxAge` when the session is opened, and written back. Default 1_209_600 (two weeks).
   */
  maxAge?: number
  /**
   * Hard limit in seconds from creation; never slides. It applies to every session loaded from
   * then on, including those created before it was set or lowered (their `createdAt` plus this,
   * or the deadline their record carries if earlier). Default none.
   */
  absoluteMaxAge?: number
  /** Least seconds between two storage touches of an active session. Default a tenth of `maxAge`. */
  touchAfter?: number
  /** Largest serialized session in bytes. Default 65_536. */
  maxSessionBytes?: number
  /** Retries of a failed storage write before it rejects. Default 3. */
  writeRetries?: number
  /** First retry delay in ms (doubles each time, with jitter). Default 50. */
  retryDelay?: number
  /** Writes that may wait for the storage before new ones fail with `SESSION_QUEUE_FULL`. Default 100_000. */
  maxPendingWrites?: number
  /**
   * Destroys (and renewed-away ids) whose storage delete failed, kept and deleted again in the
   * background until the storage acknowledges; each id stays refused in this process meanwhile.
   * Past this many the oldest is no longer retried (reported on `error`). Default 100_000.
   */
  maxPendingDestroys?: number
  /** Send the writes of many sessions in one `storage.batch` call when the storage has one. Default true. */
  batching?: boolean
  /** Most operations in one batch. Default 500. */
  maxBatchSize?: number
  /** Storage calls (or batches) in flight at once. Default 64 (2 with batching). */
  writeConcurrency?: number
  /**
   * Seconds a cached session is served without asking the storage whether it changed. Past
   * that, the next request checks its version with one cheap storage call (batched across
   * sessions) and reloads it if another process wrote, renewed or destroyed it. It bounds how
   * long another process's logout or renew can go unseen here. `0` checks on every request.
   * Default: 1 on a storage several processes share, 10 with a `bus`, and never on a storage
   * only this process can write (LevelDB, memory).
   */
  trustCacheFor?: number
  /**
   * An invalidation bus shared by the processes of a cluster (e.g. `RedisBus` from
   * `caching-session-manager/buses/redis`): every acknowledged write, destroy and renew is
   * published, and the other processes drop their copy at once. An accelerator, never the
   * source of truth: a lost message is covered by `trustCacheFor`.
   */
  bus?: InvalidationBus
  /**
   * Seconds any storage call may take before it counts as failed: a read that does not answer
   * in time gives `SESSION_STORAGE_UNAVAILABLE` (503) and later requests of that session read
   * again; a write that does not answer is retried like any failed write (`writeRetries`), then
   * rejects with `SESSION_STORAGE_FAILED`. `Infinity` waits for ever. Default 5.
   */
  storageTimeout?: number
  /**
   * What a session belongs to (a user id): the name of a data key whose value, a string or a
   * number, is the principal, or a function of the data that returns it (`undefined` for none).
   * Every write that changes it tells the storage in the same operation, so
   * {@link SessionManager.sessionsOf} lists a user's sessions and
   * {@link SessionManager.revokeSessionsOf} ends them in every process. A number is indexed as
   * its decimal text (`42` and `'42'` are one principal); text must be 1 to 255 well-formed
   * characters, else the write is refused with `SESSION_INVALID_VALUE` before anything changes.
   * With a key, only writes of that key do any work; a function runs on every write (keep it
   * cheap and pure). Needs a storage that indexes principals (`capabilities.principals`:
   * memory, LevelDB, MySQL, DynamoDB); an express-session store cannot. Sessions stored before
   * the option was set are indexed on their next write of the principal. Default none.
   *
   * @example
   * ```ts
   * const manager = new SessionManager({ storage, principal: 'userId' })
   * await req.session.set('userId', 42) // on login
   * await manager.revokeSessionsOf(42, { except: req.session.id }) // "log out my other devices"
   * ```
   */
  principal?: PrincipalOption<D>
  /**
   * The most live sessions one principal may have (needs `principal`): once a write gives a
   * session a principal that already has this many, the oldest of its other sessions (by
   * `createdAt`) are destroyed, as `revokeSessionsOf` does, before the write's promise
   * settles; the session written is never one of them. A failure to list or revoke them is
   * reported on `error` and leaves the write acknowledged. Default none.
   *
   * @example
   * ```ts
   * new SessionManager({ storage, principal: 'userId', maxSessionsPerPrincipal: 5 })
   * ```
   */
  maxSessionsPerPrincipal?: number
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number
}

/** Every option of {@link SessionManagerOptions}: a name left out here does not compile. */
const MANAGER_OPTIONS = optionNames<SessionManagerOptions>({
  storage: true,
  identities: true,
  shareSessions: true,
  cacheLimit: true,
  cacheMaxBytes: true,
  cacheMaxAge: true,
  maxAge: true,
  absoluteMaxAge: true,
  touchAfter: true,
  maxSessionBytes: true,
  writeRetries: true,
  retryDelay: true,
  maxPendingWrites: true,
  maxPendingDestroys: true,
  batching: true,
  maxBatchSize: true,
  writeConcurrency: true,
  trustCacheFor: true,
  bus: true,
  storageTimeout: true,
  principal: true,
  maxSessionsPerPrincipal: true,
  now: true,
})

/**
 * {@link SessionManagerOptions} checked, with defaults filled in and durations in milliseconds.
 * @internal
 */
export interface ManagerSettings {
  readonly cacheLimit: number
  /** 0 for no byte bound. */
  readonly cacheMaxBytes: number
  readonly cacheMaxAgeMs: number
  readonly maxAgeMs: number
  /** 0 for no absolute deadline. */
  readonly absoluteMaxAgeMs: number
  readonly touchAfterMs: number
  readonly maxSessionBytes: number
  readonly now: () => number
  /** The write queue's options, without its failure hook (the manager adds it). */
  readonly queue: Omit<WriteQueueOptions, 'onFailure'>
  readonly identities: Identity[]
  /** `undefined` when the caller gave none (the manager then uses the default). */
  readonly storage: Storage | undefined
  /** `undefined` when the caller gave none: the default depends on the storage and the bus. */
  readonly trustCacheForMs: number | undefined
  readonly bus: InvalidationBus | undefined
  /** Whether a session issued through identity `issuer` opens through `identity` (another name). */
  readonly shares: (issuer: string, identity: string) => boolean
  /** Milliseconds a storage call may take; `Infinity` for no bound. */
  readonly storageTimeoutMs: number
  readonly maxPendingDestroys: number
  /** How each session's principal is derived; `undefined` without the `principal` option. */
  readonly principals: PrincipalIndex | undefined
  /** 0 for no bound. */
  readonly maxSessionsPerPrincipal: number
}

/**
 * Check every option of a {@link SessionManager}, in one place. A bad option throws a
 * `TypeError` whose message names it (`SessionManager option "maxAge" must be …`); an unknown
 * one names the nearest known option (`option "cacheLimt" is not known: did you mean "cacheLimit"?`).
 * @internal
 */
export function parseOptions<D extends object>(options: SessionManagerOptions<D>): ManagerSettings {
  if (typeof options !== 'object' || options === null) throw new TypeError('SessionManager options must be an object')
  knownOptionsCheck(options, 'SessionManager', MANAGER_OPTIONS)
  const cacheLimit = integer(options.cacheLimit, 'cacheLimit', 100_000, 1)
  const cacheMaxAge = seconds(options.cacheMaxAge, 'cacheMaxAge', 3600)
  const maxAge = seconds(options.maxAge, 'maxAge', 1_209_600)
  const absoluteMaxAge = options.absoluteMaxAge === undefined ? 0 : seconds(options.absoluteMaxAge, 'absoluteMaxAge', 0)
  const touchAfter = options.touchAfter === undefined ? maxAge / 10 : seconds(options.touchAfter, 'touchAfter', 0, true)
  if (touchAfter >= maxAge) throw new TypeError('SessionManager option "touchAfter" must be less than "maxAge"')
  if (options.now !== undefined && typeof options.now !== 'function')
    throw new TypeError('SessionManager option "now" must be a function returning epoch milliseconds')
  const now = options.now ?? Date.now
  const maxSessionBytes = integer(options.maxSessionBytes, 'maxSessionBytes', 65_536, 64)
  const cacheMaxBytes = integer(options.cacheMaxBytes, 'cacheMaxBytes', 0, 1)
  if (cacheMaxBytes !== 0 && cacheMaxBytes < maxSessionBytes)
    throw new TypeError(`SessionManager option "cacheMaxBytes" must be at least maxSessionBytes (${maxSessionBytes}), got ${cacheMaxBytes}`)
  const queue: Omit<WriteQueueOptions, 'onFailure'> = {
    retries: integer(options.writeRetries, 'writeRetries', 3, 0),
    retryDelay: integer(options.retryDelay, 'retryDelay', 50, 0),
    maxPending: integer(options.maxPendingWrites, 'maxPendingWrites', 100_000, 1),
    maxBatchSize: integer(options.maxBatchSize, 'maxBatchSize', 500, 1),
    batching: boolean(options.batching, 'batching', true),
  }
  if (options.writeConcurrency !== undefined) queue.concurrency = integer(options.writeConcurrency, 'writeConcurrency', 64, 1)
  if (options.identities !== undefined && !Array.isArray(options.identities))
    throw new TypeError('SessionManager option "identities" must be an array of identities')
  if (options.identities?.length === 0)
    throw new TypeError('SessionManager option "identities" is an empty array: give at least one identity, or leave the option out for the default cookie')
  const identities: Identity[] = []
  for (const [index, identity] of (options.identities ?? []).entries()) identities.push(checkNewIdentity(identity, `identities[${index}]`, identities))
  const shares = sessionSharing(options.shareSessions)
  const storage = options.storage === undefined ? undefined : checkStorage(options.storage, 'storage')
  const trustCacheFor = options.trustCacheFor === undefined ? undefined : seconds(options.trustCacheFor, 'trustCacheFor', 0, true, true)
  const bus = options.bus === undefined ? undefined : checkBus(options.bus)
  const storageTimeout = seconds(options.storageTimeout, 'storageTimeout', 5, false, true)
  const maxPendingDestroys = integer(options.maxPendingDestroys, 'maxPendingDestroys', 100_000, 1)
  const principals = principalIndex(options.principal)
  const maxSessionsPerPrincipal = integer(options.maxSessionsPerPrincipal, 'maxSessionsPerPrincipal', 0, 1)
  if (maxSessionsPerPrincipal !== 0 && principals === undefined)
    throw new TypeError('SessionManager option "maxSessionsPerPrincipal" needs the "principal" option: it bounds the sessions of one principal')
  if (storage !== undefined) checkPrincipalStorage(storage, principals !== undefined)
  return {
    principals,
    maxSessionsPerPrincipal,
    storageTimeoutMs: storageTimeout * 1000,
    maxPendingDestroys,
    shares,
    trustCacheForMs: trustCacheFor === undefined ? undefined : trustCacheFor * 1000,
    bus,
    cacheLimit,
    cacheMaxBytes,
    cacheMaxAgeMs: cacheMaxAge * 1000,
    maxAgeMs: maxAge * 1000,
    absoluteMaxAgeMs: absoluteMaxAge * 1000,
    touchAfterMs: touchAfter * 1000,
    maxSessionBytes,
    now,
    queue,
    identities,
    storage,
  }
}

/**
 * `identity` if it has the methods of an {@link Identity}; a `TypeError` naming the option otherwise.
 * @internal
 */
export function checkIdentity(identity: unknown, name: string): Identity {
  const candidate = identity as Partial<Identity> | null
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.matches !== 'function' ||
    typeof candidate.get !== 'function' ||
    typeof candidate.set !== 'function' ||
    typeof candidate.remove !== 'function'
  ) {
    throw new TypeError(`SessionManager option "${name}" must be an identity with matches, get, set and remove methods`)
  }
  if (typeof candidate.name !== 'string' || candidate.name.length === 0 || candidate.name.length > MAX_ISSUER_LENGTH) {
    throw new TypeError(`SessionManager option "${name}" must have a name of 1 to ${MAX_ISSUER_LENGTH} characters (sessions record it)`)
  }
  if (candidate.withdraw !== undefined && typeof candidate.withdraw !== 'function') {
    throw new TypeError(`SessionManager option "${name}" has a withdraw that is not a method (leave it out, or make it a function)`)
  }
  return candidate as Identity
}

/**
 * {@link checkIdentity}, and its name is none of `registered`'s: sessions are bound to the name
 * of the identity that issued them, so two identities of one name could open each other's.
 * @internal
 */
export function checkNewIdentity(identity: unknown, name: string, registered: readonly Identity[]): Identity {
  const checked = checkIdentity(identity, name)
  if (registered.some((other) => other.name === checked.name)) {
    throw new TypeError(`SessionManager option "${name}" is named "${checked.name}" like another identity: each identity needs its own name`)
  }
  return checked
}

/**
 * `storage` if it has the methods the manager calls; a `TypeError` naming the option otherwise.
 * @internal
 */
export function checkStorage(storage: unknown, name: string): Storage {
  const candidate = storage as Partial<Storage> | null
  const methods = ['get', 'set', 'update', 'remove', 'delete', 'touch', 'close'] as const
  if (typeof candidate !== 'object' || candidate === null || methods.some((method) => typeof candidate[method] !== 'function')) {
    throw new TypeError(`SessionManager option "${name}" must be a storage with ${methods.join(', ')} methods`)
  }
  return candidate as Storage
}

function principalIndex(option: unknown): PrincipalIndex | undefined {
  if (option === undefined) return undefined
  if (typeof option === 'function') return new PrincipalIndex(option as PrincipalOption<never>)
  if (typeof option !== 'string' || option.length === 0)
    throw new TypeError('SessionManager option "principal" must be the name of a data key or a function of the data, e.g. principal: \'userId\'')
  return new PrincipalIndex(option)
}

/**
 * A `TypeError` naming `storage` when the `principal` option is set (`indexed`) and the storage
 * does not index principals.
 * @internal
 */
export function checkPrincipalStorage(storage: Storage, indexed: boolean): void {
  if (!indexed || capabilitiesOf(storage).principals === true) return
  throw new TypeError(
    `SessionManager option "principal" needs a storage that indexes principals (capabilities.principals), and the ${storage.name} storage does not` +
      ' (an express-session store cannot be searched by principal): use MemoryStorage, LevelStorage, MySQLStorage or DynamoDBStorage',
  )
}

function integer(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new TypeError(`SessionManager option "${name}" must be an integer of at least ${min}, got ${String(value)}`)
  }
  return value
}

function checkBus(bus: unknown): InvalidationBus {
  const candidate = bus as Partial<InvalidationBus> | null
  const methods = ['publish', 'subscribe', 'stats', 'close'] as const
  if (typeof candidate !== 'object' || candidate === null || methods.some((method) => typeof candidate[method] !== 'function')) {
    throw new TypeError(`SessionManager option "bus" must be an invalidation bus with ${methods.join(', ')} methods`)
  }
  return candidate as InvalidationBus
}

function seconds(value: unknown, name: string, fallback: number, allowZero = false, allowInfinity = false): number {
  if (value === undefined) return fallback
  if (value === Infinity && allowInfinity) return value
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new TypeError(`SessionManager option "${name}" must be a ${allowZero ? 'non-negative' : 'positive'} number of seconds, got ${String(value)}`)
  }
  return value
}

function boolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new TypeError(`SessionManager option "${name}" must be a boolean`)
  return value
}
