import { EventEmitter } from 'eventemitter3'
import { LRUCache } from 'lru-cache'
import { defaultIdentity, defaultStorage } from './defaults.js'
import { SessionError } from './errors.js'
import { createNodeMiddleware, type NodeMiddleware } from './middleware/node.js'
import { createKoaMiddleware, type KoaMiddleware } from './middleware/koa-middleware.js'
import { Session, SessionState, settle, type SessionCallback, type SessionHost } from './session.js'
import type { Identity, SessionData, SessionEvents, SessionRecord, SessionRequest, SessionResponse, Storage, StorageOperation } from './types.js'
import { freezeJson, isPlainObject } from './values.js'
import { WriteQueue, type WriteQueueOptions, type WriteQueueStats } from './write-queue.js'
import { checkIdentity, checkStorage, parseOptions, type SessionManagerOptions } from './options.js'

export type { SessionManagerOptions } from './options.js'

/** Counters returned by {@link SessionManager.stats}. */
export interface SessionManagerStats extends WriteQueueStats {
  /** Sessions in the LRU cache. */
  cached: number
  /** Sessions evicted from the cache that are kept until their pending writes land. */
  pinned: number
  /** Requests whose session came from the cache. */
  hits: number
  /** Requests that had to ask the storage. */
  misses: number
  /** Storage reads made (concurrent requests for one id share one). */
  loads: number
  /** Storage reads that failed. */
  loadErrors: number
  /** New sessions written. */
  created: number
  renewed: number
  destroyed: number
  expired: number
  evicted: number
}

const LIVE = 0
const IDLE_EXPIRED = 1
const ABSOLUTE_EXPIRED = 2
type SessionStatus = typeof LIVE | typeof IDLE_EXPIRED | typeof ABSOLUTE_EXPIRED

/**
 * Keeps the sessions this process serves in an LRU cache, reads them synchronously, and writes
 * every change through to a persistent storage. Run it behind a load balancer with session
 * affinity (sticky sessions); another process can still take a session over from storage.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { SessionManager, CookieIdentity, isSessionError, type RequestWithSession } from 'caching-session-manager'
 * import { LevelStorage } from 'caching-session-manager/storages/level'
 *
 * const manager = new SessionManager<{ views: number }>({
 *   storage: new LevelStorage({ location: './data/sessions' }),
 *   identities: [new CookieIdentity({ keys: [process.env.SESSION_KEY!] })],
 * })
 * const sessions = manager.middleware()
 * createServer((req: RequestWithSession<{ views: number }>, res) => sessions(req, res, async (err) => {
 *   if (err) { res.statusCode = isSessionError(err) ? (err.status ?? 500) : 500; return res.end() }
 *   const session = req.session!
 *   await session.set('views', (session.get('views') ?? 0) + 1)
 *   res.end(`views: ${session.get('views')}`)
 * })).listen(3000)
 * ```
 */
export class SessionManager<D extends object = SessionData> extends EventEmitter<SessionEvents> {
  #storage: Storage
  #queue: WriteQueue
  readonly #identities: Identity[]
  readonly #cache: LRUCache<string, SessionState>
  /** Sessions evicted while writes were pending: kept so a new request still reads its writes. */
  readonly #pinned = new Map<string, SessionState>()
  /** Ids renewed or destroyed here: never loaded again, even if the storage delete is late or failed. */
  readonly #revoked: LRUCache<string, true>
  readonly #loading = new Map<string, Promise<SessionState | undefined>>()
  readonly #maxAgeMs: number
  readonly #absoluteMaxAgeMs: number
  readonly #touchAfterMs: number
  readonly #maxSessionBytes: number
  readonly #queueOptions: WriteQueueOptions
  readonly #host: SessionHost
  readonly #now: () => number
  #closing: Promise<void> | undefined
  readonly #counters = { hits: 0, misses: 0, loads: 0, loadErrors: 0, created: 0, renewed: 0, destroyed: 0, expired: 0, evicted: 0 }

  constructor(options: SessionManagerOptions = {}) {
    super()
    const settings = parseOptions(options)
    this.#maxAgeMs = settings.maxAgeMs
    this.#absoluteMaxAgeMs = settings.absoluteMaxAgeMs
    this.#touchAfterMs = settings.touchAfterMs
    this.#now = settings.now
    this.#maxSessionBytes = settings.maxSessionBytes
    this.#queueOptions = { ...settings.queue, onFailure: (id, error, dataWritten) => this.#writeFailed(id, error, dataWritten) }
    this.#identities = settings.identities
    this.#storage = settings.storage ?? defaultStorage()
    const cacheLimit = settings.cacheLimit
    this.#queue = new WriteQueue(this.#storage, this.#queueOptions)
    this.#cache = new LRUCache<string, SessionState>({
      max: cacheLimit,
      ttl: settings.cacheMaxAgeMs,
      updateAgeOnGet: true,
      dispose: (state, id, reason) => {
        if (reason === 'evict' || reason === 'expire') this.#evicted(state, id)
      },
    })
    this.#revoked = new LRUCache<string, true>({ max: Math.max(cacheLimit, 1000), ttl: Math.max(this.#maxAgeMs, 1) })
    this.#host = this.#makeHost()
  }

  /** The storage in use. */
  get storage(): Storage {
    return this.#storage
  }

  /** The identities in use, in the order they are asked. */
  get identities(): readonly Identity[] {
    return this.#identities
  }

  /**
   * Replace the storage (ee-session's name). Only while no write is pending; the cache is
   * emptied, since what it held belongs to the old storage.
   */
  setPersistentStorage(storage: Storage): this {
    checkStorage(storage, 'storage')
    this.#assertOpen()
    if (this.#queue.pending > 0) throw new SessionError('SESSION_INVALID_STATE', 'cannot replace the storage while writes are pending; call it at setup')
    this.#storage = storage
    this.#queue = new WriteQueue(storage, this.#queueOptions)
    this.#cache.clear()
    this.#pinned.clear()
    return this
  }

  /** ee-session's spelling of {@link SessionManager.setPersistentStorage}. @deprecated */
  setPersistenStorage(storage: Storage): this {
    return this.setPersistentStorage(storage)
  }

  /** Add one more identity (ee-session's name); identities are asked in the order added. */
  setIdentityManager(identity: Identity): this {
    this.#identities.push(checkIdentity(identity, 'identity'))
    return this
  }

  /**
   * Connect/Express and node:http middleware: resolves the session, sets `req.session` and
   * `res.session`, then calls `next()`; a storage outage reaches `next(err)` with `status` 503.
   */
  middleware(): NodeMiddleware<D> {
    return createNodeMiddleware(this)
  }

  /**
   * Koa middleware: `ctx.session` is the session, loaded before the next middleware;
   * `ctx.session = null` destroys it; a storage outage throws a `SessionError` with `status` 503.
   *
   * @example
   * ```ts
   * app.use(manager.koa())
   * app.use(async (ctx) => { await ctx.session.set('views', Number(ctx.session.get('views') ?? 0) + 1) })
   * ```
   */
  koa(): KoaMiddleware {
    return createKoaMiddleware(this)
  }

  /**
   * The session of a request, framework-agnostic. On a cache miss it reads the storage first;
   * rejects with `SESSION_STORAGE_UNAVAILABLE` (status 503) when the storage cannot be read.
   */
  load(req: SessionRequest, res: SessionResponse): Promise<Session<D>> {
    try {
      return Promise.resolve(this.resolve(req, res))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Like {@link SessionManager.load}, but returns the session itself, without a promise, when no
   * storage read is needed (a cache hit or a new session): the fast path for adapters.
   */
  resolve(req: SessionRequest, res: SessionResponse): Session<D> | Promise<Session<D>> {
    this.#assertOpen()
    const identities = this.#activeIdentities()
    const now = this.#now()
    let first: Identity | undefined
    for (const identity of identities) {
      if (!identity.matches(req)) continue
      first ??= identity
      const candidates = identity.get(req)
      for (const id of candidates) {
        const state = this.#lookup(id)
        if (state === undefined) {
          if (this.#revoked.has(id)) continue
          return this.#resolveFromStorage(req, res, identities)
        }
        const status = this.#check(state, now)
        if (status === LIVE) {
          this.#counters.hits++
          return this.#attach(state, identity, req, res, now)
        }
        // Past its idle deadline here, but another process may have kept it alive: ask the storage.
        if (status === IDLE_EXPIRED) return this.#resolveFromStorage(req, res, identities)
      }
    }
    return new Session<D>(this.#host, req, res, first, undefined)
  }

  /**
   * Emit an event. What reaches `error` listeners is always a {@link SessionError}: anything else
   * (a middleware reporting that a request handler threw) is wrapped with code
   * `SESSION_HANDLER_FAILED`, the original kept as its `cause`.
   */
  override emit<E extends EventEmitter.EventNames<SessionEvents>>(event: E, ...args: EventEmitter.EventArgs<SessionEvents, E>): boolean {
    if (event === 'error' && !(args[0] instanceof SessionError)) args[0] = handlerFailed(args[0])
    return super.emit(event, ...args)
  }

  /** Flush pending writes, then close the storage. Idempotent; later requests and writes fail with `SESSION_CLOSED`. */
  close(callback?: SessionCallback): Promise<void> {
    this.#closing ??= this.#queue.flush().then(() => this.#storage.close())
    return settle(() => this.#closing!, callback)
  }

  /** Counters for monitoring. */
  stats(): SessionManagerStats {
    return { cached: this.#cache.size, pinned: this.#pinned.size, ...this.#counters, ...this.#queue.stats() }
  }

  async #resolveFromStorage(req: SessionRequest, res: SessionResponse, identities: readonly Identity[]): Promise<Session<D>> {
    this.#counters.misses++
    let first: Identity | undefined
    for (const identity of identities) {
      if (!identity.matches(req)) continue
      first ??= identity
      for (const id of identity.get(req)) {
        let state = this.#lookup(id)
        let staleCopy = false
        if (state !== undefined) {
          const status = this.#check(state, this.#now())
          if (status === LIVE) return this.#attach(state, identity, req, res, this.#now())
          if (status === ABSOLUTE_EXPIRED) continue
          this.#forget(id)
          staleCopy = true
        }
        if (this.#revoked.has(id)) continue
        state = await this.#load(id)
        if (state === undefined) {
          if (staleCopy) this.#expired(id)
          continue
        }
        const now = this.#now()
        if (this.#check(state, now) === LIVE) return this.#attach(state, identity, req, res, now)
      }
    }
    return new Session<D>(this.#host, req, res, first, undefined)
  }

  #assertOpen(): void {
    if (this.#closing !== undefined) throw new SessionError('SESSION_CLOSED', 'the session manager is closed')
  }

  #activeIdentities(): readonly Identity[] {
    if (this.#identities.length === 0) this.#identities.push(defaultIdentity())
    return this.#identities
  }

  #lookup(id: string): SessionState | undefined {
    const cached = this.#cache.get(id)
    if (cached !== undefined) return cached
    const pinned = this.#pinned.get(id)
    if (pinned !== undefined) {
      this.#pinned.delete(id)
      this.#cache.set(id, pinned)
    }
    return pinned
  }

  /**
   * Whether a cached session is live. One past its absolute deadline is dead for good (dropped
   * here); for one past its idle deadline the caller asks the storage, which may know a later
   * deadline (another process served and touched it meanwhile).
   */
  #check(state: SessionState, now: number): SessionStatus {
    if (state.absoluteExpiresAt !== 0 && now >= state.absoluteExpiresAt) {
      this.#forget(state.id)
      this.#expired(state.id)
      return ABSOLUTE_EXPIRED
    }
    return now < state.expiresAt ? LIVE : IDLE_EXPIRED
  }

  #expired(id: string): void {
    this.#counters.expired++
    this.#notify('expire', id)
  }

  /** Emit an event; a throwing listener is reported as a warning and never breaks the caller. */
  #notify<E extends keyof SessionEvents>(event: E, ...args: SessionEvents[E]): void {
    try {
      ;(this.emit as (event: E, ...args: SessionEvents[E]) => boolean)(event, ...args)
    } catch (err) {
      process.emitWarning(`a SessionManager "${event}" listener threw: ${messageOf(err)}`, { code: 'SESSION_LISTENER_ERROR' })
    }
  }

  #attach(state: SessionState, identity: Identity, req: SessionRequest, res: SessionResponse, now: number): Session<D> {
    const deadline = this.#deadline(state.absoluteExpiresAt, now)
    if (deadline - state.expiresAt >= this.#touchAfterMs && this.#queue.pending < (this.#queueOptions.maxPending ?? Infinity)) {
      state.expiresAt = deadline
      this.#queue.enqueue({ type: 'touch', id: state.id, expiresAt: deadline }).then(
        (applied) => {
          if (!applied) this.#lost(state)
        },
        noop, // reported once by #writeFailed
      )
      if (!res.headersSent) identity.set(req, res, state.id, deadline)
    } else if (identity.confirm !== undefined) {
      identity.confirm(req, res, state.id, state.expiresAt)
    }
    return new Session<D>(this.#host, req, res, identity, state)
  }

  #load(id: string): Promise<SessionState | undefined> {
    let loading = this.#loading.get(id)
    if (loading === undefined) {
      loading = this.#read(id).finally(() => this.#loading.delete(id))
      this.#loading.set(id, loading)
    }
    return loading
  }

  async #read(id: string): Promise<SessionState | undefined> {
    // After a failed write the cache was dropped: read only once the storage holds the outcome.
    if (this.#queue.has(id)) await this.#queue.idle(id)
    this.#counters.loads++
    let record: SessionRecord | undefined
    try {
      record = await this.#storage.get(id)
    } catch (err) {
      if (err instanceof SessionError && err.code === 'SESSION_INVALID_RECORD') {
        this.#notify('error', err)
        return undefined
      }
      this.#counters.loadErrors++
      throw new SessionError('SESSION_STORAGE_UNAVAILABLE', `could not read a session from the ${this.#storage.name} storage: ${messageOf(err)}`, {
        cause: err,
      })
    }
    if (record === undefined || record === null) return undefined
    const state = this.#fromRecord(id, record)
    if (state === undefined || this.#revoked.has(id)) return undefined
    const existing = this.#lookup(id)
    if (existing !== undefined) return existing
    this.#cache.set(id, state)
    return state
  }

  #fromRecord(id: string, record: SessionRecord): SessionState | undefined {
    const { data, createdAt, expiresAt } = record
    const absolute = record.absoluteExpiresAt ?? 0
    let problem: string | undefined
    if (typeof record !== 'object') problem = 'it is not an object'
    else if (record.id !== undefined && record.id !== id) problem = 'it belongs to another id'
    else if (!isPlainObject(data)) problem = 'its data is not an object'
    else if (!Number.isFinite(createdAt) || !Number.isFinite(expiresAt) || !Number.isFinite(absolute)) problem = 'its timestamps are missing'
    else if (!freezeJson(data, 0)) problem = 'its data is nested too deeply'
    if (problem !== undefined) {
      this.#notify(
        'error',
        new SessionError('SESSION_INVALID_RECORD', `the ${this.#storage.name} storage returned an unusable session record (${problem}); treating it as absent`),
      )
      return undefined
    }
    const now = this.#now()
    if (now >= expiresAt || (absolute !== 0 && now >= absolute)) return undefined
    return new SessionState(id, data, createdAt, expiresAt, absolute)
  }

  #deadline(absoluteExpiresAt: number, now: number): number {
    const idle = now + this.#maxAgeMs
    return absoluteExpiresAt !== 0 && absoluteExpiresAt < idle ? absoluteExpiresAt : idle
  }

  #evicted(state: SessionState, id: string): void {
    this.#counters.evicted++
    if (!state.destroyed && this.#queue.has(id)) {
      this.#pinned.set(id, state)
      this.#queue.idle(id).then(() => {
        if (this.#pinned.get(id) === state) this.#pinned.delete(id)
      }, noop)
    }
    this.#notify('evict', id)
  }

  #forget(id: string): void {
    this.#cache.delete(id)
    this.#pinned.delete(id)
  }

  // The storage no longer has the record (destroyed or expired elsewhere): so neither do we.
  #lost(state: SessionState): SessionError {
    state.destroyed = true
    if (this.#cache.peek(state.id) === state || this.#pinned.get(state.id) === state) this.#forget(state.id)
    return new SessionError('SESSION_DESTROYED', 'the session no longer exists in storage (destroyed or expired); the write was not kept')
  }

  #writeFailed(id: string, error: SessionError, dataWritten: boolean): void {
    // What the cache shows must not outlive what the storage holds: the next request reloads.
    // A failed touch changed no data, so the cached session still matches storage and is kept
    // (dropping it would turn every request of an outage into a 503).
    if (dataWritten) {
      const state = this.#cache.peek(id) ?? this.#pinned.get(id)
      // Requests still holding it must not put it back in the cache (see `current`).
      if (state !== undefined) state.detached = true
      this.#forget(id)
    }
    this.#notify('error', error)
  }

  #makeHost(): SessionHost {
    return {
      maxSessionBytes: this.#maxSessionBytes,
      now: this.#now,
      deadline: (absolute, now) => this.#deadline(absolute, now),
      absoluteDeadline: (now) => (this.#absoluteMaxAgeMs === 0 ? 0 : now + this.#absoluteMaxAgeMs),
      assertOpen: () => this.#assertOpen(),
      assertWritable: () => {
        this.#assertOpen()
        this.#queue.assertCapacity()
      },
      current: (state) => {
        const cached = this.#cache.peek(state.id) ?? this.#pinned.get(state.id)
        if (cached !== undefined) return cached
        // A request still holds a session the cache let go of: it becomes the cached copy again,
        // so a load racing this write returns it rather than caching what the storage had before.
        if (!state.destroyed && !state.detached) this.#cache.set(state.id, state)
        return state
      },
      write: (state, op: StorageOperation) =>
        this.#queue.enqueue(op).then((applied) => {
          if (!applied && op.id === state.id && op.type !== 'delete') throw this.#lost(state)
        }),
      exists: (id, expiresAt) => this.#queue.enqueue({ type: 'touch', id, expiresAt }),
      lost: (state) => this.#lost(state),
      adopt: (state) => {
        this.#counters.created++
        this.#cache.set(state.id, state)
      },
      renamed: (state, oldId) => {
        this.#counters.renewed++
        this.#forget(oldId)
        this.#revoked.set(oldId, true)
        this.#cache.set(state.id, state)
      },
      destroyed: (state) => {
        this.#counters.destroyed++
        this.#forget(state.id)
        this.#revoked.set(state.id, true)
      },
      emitCreate: (id) => this.#notify('create', id),
      emitRenew: (newId, oldId) => this.#notify('renew', newId, oldId),
      emitDestroy: (id) => this.#notify('destroy', id),
    }
  }
}

function noop(): void {}

function handlerFailed(err: unknown): SessionError {
  return new SessionError('SESSION_HANDLER_FAILED', `a request handler failed: ${messageOf(err)}`, { cause: err })
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
