import session from 'express-session'
import {
  capabilitiesOf,
  clockOption,
  checkData,
  isPlainObject,
  knownOptionsCheck,
  optionNames,
  optionsObject,
  type SessionData,
  type SessionRecord,
  type SessionRecordInput,
  type Storage,
  type StorageAdmin,
} from '../src/kit/index.js'

/** What {@link toExpressStore} needs of a storage: the manager's side and the operators' side. */
export type AdministeredStorage = Storage & StorageAdmin

/** Options of {@link toExpressStore}. */
export interface ToExpressStoreOptions {
  /**
   * Seconds a session lives when its cookie has no expiry (express-session's browser-session
   * cookies, `maxAge` unset). Default 86_400, as connect-redis.
   */
  ttl?: number
  /** Clock in epoch ms, for the deadlines of sessions without cookie expiry. Default `Date.now`. */
  now?: () => number
}

const KNOWN = optionNames<ToExpressStoreOptions>({ ttl: true, now: true })

/** A node-style callback, as express-session passes them to its store. */
type Callback<T = void> = (err: unknown, value?: T) => void

/** The session object express-session gives its store and expects back. */
type ExpressSession = session.SessionData

/**
 * An express-session `Store` backed by one of this library's storages: what
 * {@link toExpressStore} returns. It stores each express-session session object whole (its
 * `cookie` included) as the record's data; the record's deadline is `cookie.expires`.
 */
export class StorageExpressStore extends session.Store {
  /** The storage sessions live in. */
  readonly storage: AdministeredStorage
  readonly #ttlMs: number
  readonly #now: () => number

  constructor(storage: AdministeredStorage, options: ToExpressStoreOptions = {}) {
    super()
    const candidate = storage as Partial<AdministeredStorage> | null
    const methods = ['get', 'set', 'delete', 'touch', 'length', 'all', 'clear'] as const
    if (typeof candidate !== 'object' || candidate === null || methods.some((method) => typeof candidate[method] !== 'function')) {
      throw new TypeError(`toExpressStore needs a storage with ${methods.join(', ')} methods`)
    }
    knownOptionsCheck(optionsObject(options, 'toExpressStore'), 'toExpressStore', KNOWN)
    this.#now = clockOption(options.now, 'toExpressStore')
    const ttl = options.ttl ?? 86_400
    if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) throw new TypeError('toExpressStore option "ttl" must be a positive number of seconds')
    this.storage = storage
    this.#ttlMs = ttl * 1000
  }

  /** The session of `sid`, or nothing (`callback(null)`) when there is no live one. */
  override get(sid: string, callback: Callback<ExpressSession | null>): void {
    this.#reply(
      this.storage.get(sid).then((record) => (record === undefined || record === null ? null : toExpressSession(record))),
      callback,
    )
  }

  /** Store the whole session; its deadline is `cookie.expires` (or `ttl` from now). */
  override set(sid: string, sess: ExpressSession, callback?: Callback): void {
    this.#reply(new Promise<void>((resolve) => resolve(this.storage.set(sid, this.#toRecord(sess)))), callback)
  }

  /** Delete the session; deleting a missing one succeeds. */
  override destroy(sid: string, callback?: Callback): void {
    this.#reply(this.storage.delete(sid), callback)
  }

  /**
   * Move the session's deadline to `cookie.expires` and keep its `cookie` as given, as
   * express-session's MemoryStore does: a request that only changes the cookie (say
   * `req.session.cookie.maxAge` for "remember me", with `resave: false`) is touched, not saved,
   * and the next request must load that cookie. Only the `cookie` key is rewritten (one
   * `update`); the rest of the data is left as stored. A missing session is not created.
   */
  override touch(sid: string, sess: ExpressSession, callback?: () => void): void {
    const done = callback === undefined ? undefined : (err: unknown): void => (callback as Callback)(err)
    this.#reply(new Promise<boolean>((resolve) => resolve(this.#touch(sid, sess))), done)
  }

  /** Every live session, as `{ [sid]: session }` (the shape of express-session's MemoryStore). */
  override all(callback: Callback<Record<string, ExpressSession>>): void {
    const collect = async (): Promise<Record<string, ExpressSession>> => {
      const sessions: Record<string, ExpressSession> = Object.create(null) as Record<string, ExpressSession>
      for await (const [sid, record] of this.storage.all()) sessions[sid] = toExpressSession(record)
      return sessions
    }
    this.#reply(collect(), callback)
  }

  /** Number of live sessions. */
  override length(callback: Callback<number>): void {
    this.#reply(this.storage.length(), callback)
  }

  /** Delete every session of the storage. */
  override clear(callback?: Callback): void {
    this.#reply(this.storage.clear(), callback)
  }

  /**
   * Settle a store callback outside the promise chain, so a throw in the callback is not
   * swallowed. A failure without a callback to take it goes to `error` listeners, if any.
   */
  #reply<T>(work: Promise<T>, callback: Callback<T> | undefined): void {
    work.then(
      (value) => {
        if (callback !== undefined) process.nextTick(callback, null, value)
      },
      (err: unknown) => {
        if (callback !== undefined) process.nextTick(callback, err)
        else if (this.listenerCount('error') > 0) this.emit('error', err)
      },
    )
  }

  #toRecord(sess: ExpressSession): SessionRecordInput {
    // JSON is what storages keep: the Cookie becomes its toJSON() form, Dates become strings.
    const data: unknown = JSON.parse(JSON.stringify(sess))
    if (!isPlainObject(data)) throw new TypeError('express-session gave the store a session that is not an object')
    // What the storage cannot hold is refused here, as a bad value rather than a storage failure.
    checkData(data, capabilitiesOf(this.storage).limits)
    const now = this.#now()
    return { data: data as SessionData, createdAt: now, expiresAt: this.#deadline(sess, now) }
  }

  #touch(sid: string, sess: ExpressSession): Promise<boolean> {
    const cookie: unknown = sess.cookie === undefined || sess.cookie === null ? undefined : JSON.parse(JSON.stringify(sess.cookie))
    // No cookie to keep (not something express-session sends): move the deadline only.
    if (!isPlainObject(cookie)) return this.storage.touch(sid, this.#deadline(sess))
    return this.storage.update(sid, 'cookie', cookie as SessionData, this.#deadline(sess))
  }

  #deadline(sess: ExpressSession, now = this.#now()): number {
    const expires = sess.cookie?.expires
    const time = expires === undefined || expires === null ? NaN : new Date(expires).getTime()
    return Number.isFinite(time) ? time : now + this.#ttlMs
  }
}

/**
 * An express-session store backed by one of this library's storages, so an express-session
 * app can move its sessions onto LevelDB, MySQL or DynamoDB first and switch to the manager
 * later. It passes express-session's store contract: get, set, destroy, touch, all, length,
 * clear (and `load`, `regenerate`, `createSession` from express-session's `Store`).
 *
 * Each session is stored whole, `cookie` included, as the record's data, and expires at
 * `cookie.expires` (or `ttl` seconds after each write for browser-session cookies).
 * express-session's ids (32 characters of base64url by default) are not this library's
 * 43-character ids; the storages take them as they are.
 *
 * Import it from its subpath, not the package root: the root also declares `req.session` as
 * this library's session for Express, and one program cannot use both declarations.
 *
 * @example
 * ```ts
 * import session from 'express-session'
 * import { toExpressStore } from 'caching-session-manager/storages/to-express-store'
 * import { LevelStorage } from 'caching-session-manager/storages/level'
 *
 * app.use(session({
 *   secret: process.env.SESSION_SECRET!,
 *   resave: false,
 *   saveUninitialized: false,
 *   store: toExpressStore(new LevelStorage({ location: './data/sessions' })),
 * }))
 * ```
 */
export function toExpressStore(storage: AdministeredStorage, options?: ToExpressStoreOptions): StorageExpressStore {
  return new StorageExpressStore(storage, options)
}

/** The stored session, its cookie's expiry moved to the record's deadline (the record's deadline is the one to trust). */
function toExpressSession(record: SessionRecord): ExpressSession {
  const data = record.data as unknown as ExpressSession
  const cookie = data.cookie as (ExpressSession['cookie'] & { expires?: unknown }) | undefined
  if (cookie === undefined || cookie === null || typeof cookie !== 'object') return data
  const expires = cookie.expires === undefined || cookie.expires === null ? cookie.expires : new Date(record.expiresAt).toISOString()
  return { ...data, cookie: { ...cookie, expires } as unknown as ExpressSession['cookie'] }
}
