import {
  AbstractStorage,
  KeyedLock,
  booleanOption,
  deadlineOf,
  decideWrite,
  encodeValue,
  hasCode,
  invalidRecord,
  isLive,
  knownOptionsCheck,
  limitsOption,
  optionNames,
  optionsObject,
  parseRecord,
  nextVersion,
  setOwn,
  toError,
  unsupported,
  type AbstractStorageOptions,
  type SessionRecord,
  type StorageCapabilities,
  type StorageLimits,
  type StorageOperation,
  type WriteConflict,
} from '../src/kit/index.js'

/** A node-style callback as express-session stores call them; what they pass is checked, not trusted. */
export type ExpressStoreCallback = (err?: unknown, value?: unknown) => unknown

/** The cookie part of an express-session session object: what stores read to expire it. */
export interface ExpressSessionCookie {
  originalMaxAge: number | null
  expires?: Date | string | null | undefined
}

/** A session object as express-session hands it to a store: a `cookie`, then any fields. */
export interface ExpressSessionObject {
  cookie: ExpressSessionCookie
}

/**
 * The express-session `Store` contract, as {@link ExpressStoreStorage} uses it: any
 * express-session store (connect-redis, connect-mongo, `session.MemoryStore`, ...) fits.
 * `all`, `length` and `clear` are optional, as they are for express-session.
 */
export interface ExpressSessionStore {
  get(sid: string, callback: ExpressStoreCallback): unknown
  set(sid: string, session: ExpressSessionObject, callback?: ExpressStoreCallback): unknown
  destroy(sid: string, callback?: ExpressStoreCallback): unknown
  all?(callback: ExpressStoreCallback): unknown
  length?(callback: ExpressStoreCallback): unknown
  clear?(callback?: ExpressStoreCallback): unknown
}

/** Options of {@link ExpressStoreStorage}. */
export interface ExpressStoreStorageOptions extends AbstractStorageOptions {
  /** Milliseconds to wait for the store to call back before the call fails. Default 10_000; 0 waits forever. */
  timeout?: number
  /** Name in error messages. Default `'express-store'`. */
  name?: string
  /**
   * Let the store expire sessions itself: `cookie.expires` carries each session's deadline, so
   * a Redis TTL (or a store's purge on read) removes it on time. Default `true`.
   *
   * `false` writes the cookie without an expiry: only this library's deadline (checked on every
   * read) and `cleanup()` end sessions, as with a store whose own expiry is off or absent; run
   * `cleanup()` periodically. Do not use it with a store that gives such sessions a default
   * lifetime (connect-redis without `disableTTL` keeps them one day, whatever `maxAge` says).
   */
  storeExpires?: boolean
  /**
   * What the store can hold in one session, when you know it (see {@link StorageLimits}): the
   * manager then refuses a value beyond it in `set()` instead of the store failing the write.
   * Default none: the manager's own limits (nesting 100, `maxSessionBytes`).
   *
   * @example
   * ```ts
   * new ExpressStoreStorage(new MongoStore({ mongoUrl }), { limits: { maxDataBytes: 16_000_000 } }) // a BSON document's 16 MB
   * ```
   */
  limits?: StorageLimits
}

/** The field of the stored session object that holds this library's record. */
export const RECORD_FIELD = '__csm'

/** This library's record, as kept under {@link RECORD_FIELD}. */
interface StoredRecord extends SessionRecord {
  id: string
}

/** At most this many deletions of `cleanup` are in flight at once. */
const CLEANUP_CONCURRENCY = 16
const OWNER = 'ExpressStoreStorage'
const KNOWN = optionNames<ExpressStoreStorageOptions>({ timeout: true, name: true, storeExpires: true, now: true, limits: true })

/**
 * Keeps sessions in any express-session store, so the 60+ existing stores (connect-redis,
 * connect-mongo, ...) can back the manager.
 *
 * Each session is stored as a valid express-session session object, so express-session tools
 * still list and expire it: `{ cookie: { originalMaxAge, expires }, __csm: { id, data,
 * createdAt, expiresAt, absoluteExpiresAt, version } }`. The session's data sits under
 * `__csm.data`, so no key of yours can collide with `cookie` or with what a store adds (connect-redis
 * adds `id` when listing); `cookie.expires` is the session's deadline, so the store's own expiry
 * (a Redis TTL, say) removes it on time. Expiry is also checked on every read, to the millisecond.
 *
 * express-session stores have no per-key update and no compare-and-set: `update`, `remove` and
 * `touch` read the session, change it and write it back, and a conditional write (`ifVersion`)
 * checks the version it read before it writes. They are serialized per id inside this process,
 * so concurrent writes of one process never lose each other and a conditional write is atomic
 * within the process. Across processes it is not: two processes writing the same session at
 * once can both pass the check and the last write wins, unlike MySQL or DynamoDB, where the
 * check is part of the write. Sticky sessions make that rare; do not use this storage where it
 * is not. `versions(ids)` reads each session (one store `get` per id, a few at a time): it is
 * correct, not cheap.
 *
 * `length`, `all`, `clear` and `cleanup` need the store's `length`/`all`/`clear` and reject
 * with `SESSION_INVALID_STATE` naming the missing method. Stores that expire sessions
 * themselves (most do) leave `cleanup` nothing to find. `close` does not close the store's
 * client: close it after `manager.close()`.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * import { RedisStore } from 'connect-redis'
 * import { ExpressStoreStorage } from 'caching-session-manager/storages/express-store'
 *
 * const redis = await createClient({ url: 'redis://127.0.0.1:6379' }).connect()
 * const manager = new SessionManager({
 *   storage: new ExpressStoreStorage(new RedisStore({ client: redis, prefix: 'sess:' })),
 * })
 * ```
 */
export class ExpressStoreStorage extends AbstractStorage {
  /** No batch; the operators' side when the store has `all()` and `clear()`; the store may be shared. */
  readonly capabilities: StorageCapabilities
  readonly #store: ExpressSessionStore
  readonly #timeout: number
  readonly #storeExpires: boolean
  readonly #locks = new KeyedLock()

  constructor(store: ExpressSessionStore, options: ExpressStoreStorageOptions = {}) {
    knownOptionsCheck(optionsObject(options, OWNER), OWNER, KNOWN)
    super((options as Partial<ExpressStoreStorageOptions> | null)?.name ?? 'express-store', options, OWNER)
    const candidate = store as Partial<ExpressSessionStore> | null
    if (
      typeof candidate !== 'object' ||
      candidate === null ||
      typeof candidate.get !== 'function' ||
      typeof candidate.set !== 'function' ||
      typeof candidate.destroy !== 'function'
    ) {
      throw new TypeError('ExpressStoreStorage needs an express-session store (an object with get, set and destroy methods)')
    }
    const timeout = optionsObject(options, OWNER).timeout ?? 10_000
    if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout < 0) {
      throw new TypeError('ExpressStoreStorage option "timeout" must be a non-negative integer of milliseconds')
    }
    this.#storeExpires = booleanOption(options.storeExpires, OWNER, 'storeExpires', true)
    this.#store = store
    this.#timeout = timeout
    const limits = limitsOption(options.limits, OWNER)
    this.capabilities = {
      batch: false,
      admin: typeof store.all === 'function' && typeof store.clear === 'function',
      shared: true,
      ...(limits === undefined ? {} : { limits }),
    }
  }

  protected override async _get(id: string): Promise<SessionRecord | undefined> {
    const stored = await this.#read(id)
    return stored === undefined ? undefined : toRecord(stored)
  }

  /**
   * Every write reads the session, decides with the kit's rule (`decideWrite`) and writes it
   * back, under this process's lock of the id. `touch` moves the deadline by rewriting the
   * session: a store's own `touch` may only reset its TTL, not the stored deadline.
   */
  protected override _apply(op: StorageOperation, now: number): Promise<boolean | WriteConflict> {
    // Refused here, not by the store's serializer.
    if (op.type === 'set') encodeValue(op.record.data, 'data')
    else if (op.type === 'update') encodeValue(op.value, op.key)
    // An unconditional delete needs nothing of the session: no read.
    if (op.type === 'delete' && op.ifVersion === undefined) return this.#exclusive(op.id, () => this.#destroy(op.id).then(() => true))
    return this.#exclusive(op.id, async () => {
      // A set or delete replaces what it finds, so a record that is not ours counts as none (a set starts the version over).
      const replaces = op.type === 'set' || op.type === 'delete'
      const stored = await (replaces ? this.#readOrNone(op.id) : this.#read(op.id))
      const live = stored !== undefined && isLive(stored, now) ? stored : undefined
      const decision = decideWrite(op, live)
      if (decision !== 'apply') return decision
      switch (op.type) {
        case 'set':
          await this.#write({ ...op.record, id: op.id, version: nextVersion(live) })
          return true
        case 'delete':
          await this.#destroy(op.id)
          return true
        case 'update': {
          const data = { ...live!.data }
          setOwn(data, op.key, op.value)
          await this.#write({ ...live!, data, expiresAt: op.expiresAt, version: nextVersion(live) })
          return true
        }
        case 'remove': {
          const { [op.key]: _removed, ...data } = live!.data
          await this.#write({ ...live!, data, expiresAt: op.expiresAt, version: nextVersion(live) })
          return true
        }
        case 'touch':
          await this.#write({ ...live!, expiresAt: op.expiresAt })
          return true
      }
    })
  }

  /**
   * Live sessions of this library in the store. Counted from `all()` when the store has it, so
   * sessions expired by our deadline but still held (and sessions other code wrote) are left
   * out; otherwise the store's own `length()`.
   */
  protected override async _length(now: number): Promise<number> {
    const store = this.#store
    if (typeof store.all === 'function') return (await this.#ours('length')).filter(([, stored]) => isLive(stored, now)).length
    if (typeof store.length !== 'function') throw missing(this.name, 'all() or length()', 'length')
    const count = await this.#call('length', (callback) => store.length!(callback))
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0)
      throw new Error(`the ${this.name} store's length() answered ${String(count)}, not a count`)
    return count
  }

  protected override async _all(): Promise<Array<[string, SessionRecord]>> {
    return (await this.#ours('all')).map(([id, stored]) => [id, toRecord(stored)])
  }

  protected override async _clear(): Promise<void> {
    const store = this.#store
    if (typeof store.clear !== 'function') throw missing(this.name, 'clear()', 'clear')
    await this.#call('clear', (callback) => store.clear!(callback))
  }

  protected override async _cleanup(now: number): Promise<number> {
    const expired = (await this.#ours('cleanup')).filter(([, stored]) => !isLive(stored, now)).map(([id]) => id)
    let removed = 0
    for (let i = 0; i < expired.length; i += CLEANUP_CONCURRENCY) {
      const chunk = expired.slice(i, i + CLEANUP_CONCURRENCY)
      const outcomes = await Promise.all(chunk.map((id) => this.#exclusive(id, () => this.#destroyIfExpired(id, now))))
      removed += outcomes.filter(Boolean).length
    }
    return removed
  }

  /** Run `work` after every earlier operation on `id` has settled. */
  #exclusive<T>(id: string, work: () => Promise<T>): Promise<T> {
    return this.#locks.run([id], work)
  }

  /** {@link ExpressStoreStorage.#read}, with a record that is not usable as none. */
  #readOrNone(id: string): Promise<StoredRecord | undefined> {
    return this.#read(id).catch((err: unknown) => {
      if (hasCode(err, 'SESSION_INVALID_RECORD')) return undefined
      throw err
    })
  }

  async #read(id: string): Promise<StoredRecord | undefined> {
    const store = this.#store
    const session = await this.#call('get', (callback) => store.get(id, callback))
    if (session === undefined || session === null) return undefined
    const stored = parseStored(session, id)
    if (typeof stored === 'string') throw invalidRecord(this.name, stored, id)
    return stored
  }

  #write(stored: StoredRecord): Promise<unknown> {
    const deadline = deadlineOf(stored)
    const session: ExpressSessionObject & { [RECORD_FIELD]: StoredRecord } = {
      // What express-session writes, so the store's own expiry (a TTL, a purge on read) follows ours.
      cookie: this.#storeExpires
        ? { originalMaxAge: Math.max(0, deadline - this.now()), expires: new Date(deadline) }
        : { originalMaxAge: null, expires: null },
      [RECORD_FIELD]: stored,
    }
    const store = this.#store
    return this.#call('set', (callback) => store.set(stored.id, session, callback))
  }

  #destroy(id: string): Promise<void> {
    const store = this.#store
    return this.#call('destroy', (callback) => store.destroy(id, callback)).then(noop)
  }

  async #destroyIfExpired(id: string, now: number): Promise<boolean> {
    // Looked at again under the lock: a request may have extended it since the listing.
    const stored = await this.#read(id).catch(() => undefined)
    if (stored === undefined || isLive(stored, now)) return false
    await this.#destroy(id)
    return true
  }

  /** Every session of the store that this library wrote, with its id. */
  async #ours(caller: string): Promise<Array<[string, StoredRecord]>> {
    const store = this.#store
    if (typeof store.all !== 'function') throw missing(this.name, 'all()', caller)
    const listed = await this.#call('all', (callback) => store.all!(callback))
    const ours: Array<[string, StoredRecord]> = []
    if (typeof listed !== 'object' || listed === null) return ours
    // Stores answer either { sid: session } (MemoryStore) or [session, ...] (connect-redis adds `id`).
    const entries: Array<[string | undefined, unknown]> = Array.isArray(listed) ? listed.map((session) => [undefined, session]) : Object.entries(listed)
    for (const [sid, session] of entries) {
      const stored = parseStored(session, sid)
      // Sessions this library did not write (express-session's own, in a shared store) are not ours to list.
      if (typeof stored !== 'string') ours.push([stored.id, stored])
    }
    return ours
  }

  /** Call a callback-style store method, as a promise; also catches a throw or a rejected promise. */
  #call(method: string, invoke: (callback: ExpressStoreCallback) => unknown): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const callback: ExpressStoreCallback = (err, value) => {
        if (timer !== undefined) clearTimeout(timer)
        if (err !== undefined && err !== null) reject(toError(err))
        else resolve(value)
      }
      if (this.#timeout > 0) {
        timer = setTimeout(() => reject(new Error(`the ${this.name} store did not call back from ${method}() within ${this.#timeout} ms`)), this.#timeout)
        timer.unref()
      }
      try {
        const returned = invoke(callback)
        if (isThenable(returned)) returned.then(undefined, (err: unknown) => callback(err ?? new Error(`the ${this.name} store's ${method}() rejected`)))
      } catch (err) {
        callback(err ?? new Error(`the ${this.name} store's ${method}() threw`))
      }
    })
  }
}

/** The record under {@link RECORD_FIELD}, or why there is none usable. `sid` is the id it is stored under, when known. */
function parseStored(session: unknown, sid: string | undefined): StoredRecord | string {
  if (typeof session !== 'object' || session === null) return 'it is not an object'
  const stored = (session as Record<string, unknown>)[RECORD_FIELD] as Partial<StoredRecord> | undefined
  if (typeof stored !== 'object' || stored === null) return `it has no "${RECORD_FIELD}" field (it was not written by caching-session-manager)`
  const id = stored.id ?? sid
  if (typeof id !== 'string' || (sid !== undefined && id !== sid)) return 'it belongs to another id'
  const record = parseRecord(stored as SessionRecord)
  return typeof record === 'string' ? record : { ...record, id }
}

/** The record without its id, as `get` returns it. */
function toRecord(stored: StoredRecord): SessionRecord {
  const { id: _id, ...record } = stored
  return record
}

function missing(name: string, methods: string, caller: string): Error {
  return unsupported(name, caller, `the store has no ${methods} method, which ExpressStoreStorage.${caller}() needs`)
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
}

function noop(): void {}
