import { EventEmitter } from 'eventemitter3'
import { openCarried, CarriedHost, type CarriedContext } from './carried.js'
import { defaultIdentity, defaultStorage, warnMemoryStorage } from './defaults.js'
import { SessionError, storageUnavailable } from './errors.js'
import { messageOf } from './kit/errors.js'
import { Coherence, type CoherenceStats } from './coherence.js'
import { capabilitiesOf } from './kit/contract.js'
import { valueLimits } from './kit/limits.js'
import { SessionLifecycle, type Notify } from './lifecycle.js'
import { createNodeMiddleware, type NodeMiddleware } from './middleware/node.js'
import { createKoaMiddleware, type KoaMiddleware } from './middleware/koa-middleware.js'
import { checkNewIdentity, checkPrincipalStorage, checkStorage, parseOptions, type SessionManagerOptions } from './options.js'
import { principalArgument, PrincipalSessions } from './principals.js'
import type { PrincipalSession } from './kit/contract.js'
import { SessionPolicy } from './policy.js'
import { resolveSession, type ResolveContext } from './resolve.js'
import { SessionCache } from './session-cache.js'
import { withDeadline, withTimeout } from './storage-timeout.js'
import { Session, settle, type SessionCallback } from './session.js'
import type { InvalidationBus } from './bus.js'
import type { Identity, SessionData, SessionEvents, SessionRequest, SessionResponse, Storage } from './types.js'
import type { WriteQueueStats } from './write-queue.js'

export type { SessionManagerOptions } from './options.js'

/** Options of {@link SessionManager.load}. */
export interface LoadOptions {
  /**
   * Check a cached session with the storage before serving it, whatever `trustCacheFor` says:
   * for sensitive routes (changing a password, paying). Rejects with
   * `SESSION_STORAGE_UNAVAILABLE` when the storage cannot answer.
   */
  fresh?: boolean
}

/** Options of {@link SessionManager.revokeSessionsOf}. */
export interface RevokeSessionsOptions {
  /** A session id to leave alone: the caller's own session, for "log out my other devices". */
  except?: string | undefined
}

/** Counters returned by {@link SessionManager.stats}. */
export interface SessionManagerStats extends WriteQueueStats, CoherenceStats {
  /** Sessions in the LRU cache. */
  cached: number
  /** What the cached sessions count for under `cacheMaxBytes` (serialized bytes plus a fixed overhead each); 0 without it. */
  cachedBytes: number
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
  /**
   * Destroyed or renewed-away ids whose storage delete failed and is retried in the background
   * until the storage acknowledges (each refused here meanwhile; see `maxPendingDestroys`).
   */
  pendingDestroys: number
}

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
 *   await session.update('views', (views) => (views ?? 0) + 1)
 *   res.end(`views: ${session.get('views')}`)
 * })).listen(3000)
 * ```
 */
export class SessionManager<D extends object = SessionData> extends EventEmitter<SessionEvents> {
  readonly #identities: Identity[]
  readonly #cache: SessionCache
  readonly #lifecycle: SessionLifecycle
  readonly #coherence: Coherence
  readonly #trustCacheForMs: number | undefined
  readonly #storageTimeoutMs: number
  /** The storage as given; the lifecycle and the coherence checks use it bounded by `storageTimeout`. */
  #storage: Storage
  readonly #resolving: ResolveContext<Session<D>>
  readonly #counters = { hits: 0, misses: 0, expired: 0, evicted: 0 }
  /** No storage was given and none is needed yet (every identity carries its sessions): warn once one that needs it is added. */
  #quietStorage: boolean
  readonly #bus: InvalidationBus | undefined
  /** What {@link SessionManager.ready} returns: kept once it resolved, forgotten when it failed. */
  #ready: Promise<void> | undefined
  /** The opening {@link SessionManager.ready} started, while it runs: requests wait for it. */
  #starting: Promise<void> | undefined
  /** The sessions of each principal; `undefined` without the `principal` option. */
  readonly #principals: PrincipalSessions | undefined

  constructor(options: SessionManagerOptions<D> = {}) {
    super()
    const settings = parseOptions(options)
    const policy = new SessionPolicy(settings)
    const notify: Notify = (event, ...args) => this.#notify(event, ...args)
    this.#cache = new SessionCache({
      limit: settings.cacheLimit,
      maxBytes: settings.cacheMaxBytes,
      maxAgeMs: settings.cacheMaxAgeMs,
      revokedForMs: settings.maxAgeMs,
      pending: { has: (id) => this.#lifecycle.pending.has(id), idle: (id) => this.#lifecycle.pending.idle(id) },
      onEvict: (id) => {
        this.#counters.evicted++
        this.#notify('evict', id)
      },
    })
    // A manager whose identities all carry their sessions stores nothing: its default storage stays unused, so no warning.
    this.#quietStorage = settings.storage === undefined && settings.identities.length > 0 && settings.identities.every(carries)
    this.#storage = settings.storage ?? defaultStorage(!this.#quietStorage)
    this.#storageTimeoutMs = settings.storageTimeoutMs
    this.#bus = settings.bus
    const storage = withTimeout(this.#storage, settings.storageTimeoutMs)
    const lifecycle = new SessionLifecycle(
      storage,
      settings.queue,
      policy,
      this.#cache,
      notify,
      (id, version, kind) => this.#coherence.publish(id, version, kind),
      settings.maxPendingDestroys,
    )
    this.#lifecycle = lifecycle
    if (settings.principals !== undefined) {
      lifecycle.principals = settings.principals
      const principals = new PrincipalSessions(
        {
          get storage() {
            return lifecycle.storage
          },
          now: settings.now,
          isRevoked: (id) => lifecycle.isRevoked(id),
          revoke: (id, version) => lifecycle.revoke(id, version),
          report: (error) => this.#notify('error', error),
        },
        settings.maxSessionsPerPrincipal,
      )
      this.#principals = principals
      if (settings.maxSessionsPerPrincipal !== 0) lifecycle.onPrincipal = (principal, id) => principals.enforce(principal, id)
    }
    this.#trustCacheForMs = settings.trustCacheForMs
    const trustMs = this.#trustFor(storage, settings.bus !== undefined)
    lifecycle.versioned = trustMs !== Infinity
    this.#coherence = new Coherence(storage, {
      cache: this.#cache,
      pending: lifecycle.pending,
      now: settings.now,
      trustMs,
      bus: settings.bus,
      onError: (err) => this.#notify('error', new SessionError('SESSION_STORAGE_ERROR', `the invalidation bus failed: ${messageOf(err)}`, { cause: err })),
    })
    const coherence = this.#coherence
    this.#identities = settings.identities
    const carried: CarriedContext = {
      policy,
      limits: valueLimits(settings.maxSessionBytes, undefined, 'sealed cookie'),
      counters: lifecycle.counters,
      notify,
      expired: (id) => this.#expired(id),
      assertOpen: () => lifecycle.assertOpen(),
    }
    this.#resolving = {
      cache: this.#cache,
      policy,
      counters: this.#counters,
      read: (id) => lifecycle.read(id),
      expired: (id) => this.#expired(id),
      checks: trustMs !== Infinity,
      check: (state, clientVersion, now, fresh) => coherence.check(state, clientVersion, now, fresh),
      probe: (id) => coherence.probe(id),
      shares: settings.shares,
      checked: (id, outcome, error) => {
        if (outcome === 'failed') {
          this.#notify(
            'error',
            storageUnavailable('SESSION_STORAGE_UNAVAILABLE', "a cached session's version could not be checked; it was served as last validated", error, id),
          )
          return
        }
        if (outcome === 'stale') coherence.stats.staleReloads++
        else coherence.stats.revokedElsewhere++
        this.#cache.drop(id)
      },
      carry: (identity, carrier, req, res, now) => {
        const opening = openCarried(carried, identity, carrier, req, res, now)
        return opening === undefined ? undefined : new Session<D>(opening.host, req, res, identity, opening.state)
      },
      open: (state, identity, req, res, now) => {
        if (identity?.carrier !== undefined) return new Session<D>(new CarriedHost(carried, identity.carrier, req, res), req, res, identity, undefined)
        if (state !== undefined && identity !== undefined) {
          if (lifecycle.extend(state, now)) {
            if (!res.headersSent) identity.set(req, res, state.id, state.expiresAt)
          } else if (identity.confirm !== undefined) {
            identity.confirm(req, res, state.id, state.expiresAt)
          }
        }
        return new Session<D>(lifecycle, req, res, identity, state)
      },
    }
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
    checkPrincipalStorage(storage, this.#principals !== undefined)
    if (this.#trustFor(storage, false) !== this.#trustFor(this.#lifecycle.storage, false)) {
      throw new SessionError('SESSION_INVALID_STATE', 'cannot replace the storage with one of another kind (shared or not); give it to the constructor')
    }
    const bounded = withTimeout(storage, this.#storageTimeoutMs)
    this.#lifecycle.replaceStorage(bounded)
    this.#coherence.storage = bounded
    this.#storage = storage
    return this
  }

  /** ee-session's spelling of {@link SessionManager.setPersistentStorage}. @deprecated */
  setPersistenStorage(storage: Storage): this {
    return this.setPersistentStorage(storage)
  }

  /** Add one more identity (ee-session's name); identities are asked in the order added. */
  setIdentityManager(identity: Identity): this {
    const checked = checkNewIdentity(identity, 'identity', this.#identities)
    this.#identities.push(checked)
    if (this.#quietStorage && !carries(checked)) {
      this.#quietStorage = false
      warnMemoryStorage()
    }
    return this
  }

  /**
   * Open the storage (connect, create or check its table; `storage.open()`) and the invalidation
   * bus, if any (connected and subscribed), so that a server fails at start-up rather than on
   * its first request. Call it before listening. Rejects with a `SESSION_STORAGE_UNAVAILABLE`
   * {@link SessionError} whose message says what failed in the backend's words (`the mysql
   * storage could not be opened: connect ECONNREFUSED 127.0.0.1:3307`), the backend's error on
   * `cause`; each part is bounded by `storageTimeout`. Requests that arrive meanwhile wait for
   * it (and get a 503 if it fails). Idempotent: once resolved, every call returns the same
   * promise; a failed `ready()` can be called again. Optional: without it, the storage opens on
   * its first call.
   *
   * @example
   * ```ts
   * try {
   *   await manager.ready()
   * } catch (err) {
   *   console.error((err as Error).message)
   *   process.exit(1)
   * }
   * server.listen(3000)
   * ```
   */
  ready(): Promise<void> {
    if (this.#ready !== undefined) return this.#ready
    try {
      this.#lifecycle.assertOpen()
    } catch (err) {
      return Promise.reject(err)
    }
    const starting = this.#open()
    this.#starting = starting
    const ready = starting.then(
      () => {
        this.#starting = undefined
      },
      (err: unknown) => {
        this.#starting = undefined
        this.#ready = undefined
        throw err
      },
    )
    this.#ready = ready
    return ready
  }

  async #open(): Promise<void> {
    const storage = this.#lifecycle.storage
    if (typeof storage.open === 'function') {
      try {
        await storage.open()
      } catch (err) {
        throw notOpened(`the ${storage.name} storage could not be opened`, err)
      }
    }
    const bus = this.#bus
    if (bus !== undefined) {
      const ms = this.#storageTimeoutMs
      try {
        await withDeadline(
          () => bus.ready(),
          ms,
          () => `the invalidation bus did not connect within ${ms} ms (storageTimeout)`,
        )
      } catch (err) {
        throw notOpened('the invalidation bus could not be opened', err)
      }
    }
  }

  /** A request that arrived while {@link SessionManager.ready} runs: resolved once it is done. */
  async #afterReady(starting: Promise<void>, req: SessionRequest, res: SessionResponse, options?: LoadOptions): Promise<Session<D>> {
    try {
      await starting
    } catch (err) {
      throw storageUnavailable('SESSION_STORAGE_UNAVAILABLE', 'the storage could not be opened', err)
    }
    return this.resolve(req, res, options)
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
   * app.use(async (ctx) => { await ctx.session.update('views', (views) => Number(views ?? 0) + 1) })
   * ```
   */
  koa(): KoaMiddleware {
    return createKoaMiddleware(this)
  }

  /**
   * The session of a request, framework-agnostic. On a cache miss it reads the storage first;
   * rejects with `SESSION_STORAGE_UNAVAILABLE` (status 503) when the storage cannot be read.
   * With `{ fresh: true }` a cached session is checked with the storage first.
   *
   * @example
   * ```ts
   * const session = await manager.load(req, res, { fresh: true }) // before changing a password
   * ```
   */
  load(req: SessionRequest, res: SessionResponse, options?: LoadOptions): Promise<Session<D>> {
    try {
      return Promise.resolve(this.resolve(req, res, options))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Like {@link SessionManager.load}, but returns the session itself, without a promise, when no
   * storage call is needed (a trusted cache hit or a new session): the fast path for adapters.
   */
  resolve(req: SessionRequest, res: SessionResponse, options?: LoadOptions): Session<D> | Promise<Session<D>> {
    this.#lifecycle.assertOpen()
    if (this.#starting !== undefined) return this.#afterReady(this.#starting, req, res, options)
    if (this.#identities.length === 0) this.setIdentityManager(defaultIdentity())
    return resolveSession(this.#resolving, this.#identities, req, res, options?.fresh === true)
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

  /**
   * The live sessions of principal `value` (see the `principal` option), oldest first, from the
   * storage's index: each with its `id`, `createdAt`, `expiresAt` (epoch ms), `version` and the
   * identity that issued it, never its data. A number and its decimal text are the same
   * principal. Expired sessions and sessions destroyed here are not listed. Rejects with a
   * `TypeError` for a `value` that is neither a string nor a number, `SESSION_INVALID_VALUE`
   * for one that cannot be a principal, `SESSION_INVALID_STATE` without the `principal` option,
   * and `SESSION_STORAGE_UNAVAILABLE` when the storage cannot answer (within `storageTimeout`):
   * never an empty list for a failure.
   *
   * @example
   * ```ts
   * for (const { id, createdAt } of await manager.sessionsOf(42)) console.log(id, new Date(createdAt))
   * ```
   */
  sessionsOf(value: string | number): Promise<PrincipalSession[]> {
    return settle(() => this.#principalsOrThrow().list(principalArgument(value, 'sessionsOf')))
  }

  /**
   * Destroy every live session of principal `value` but `options.except` (the caller's own, for
   * "log out my other devices"), in storage and in every process, as `session.destroy()` does:
   * revoked here at once, whether this process has them cached or not, their records deleted,
   * the other processes told through the `bus` (without one, within `trustCacheFor`). Resolves
   * to how many sessions were destroyed. Rejects as {@link SessionManager.sessionsOf} does, and
   * with the storage's coded error (`SESSION_STORAGE_FAILED`) when a delete failed for good: that
   * session stays refused here and its delete is retried in the background.
   *
   * @example
   * ```ts
   * const ended = await manager.revokeSessionsOf(req.session.get('userId')!, { except: req.session.id })
   * res.end(`logged out of ${ended} other devices`)
   * ```
   */
  revokeSessionsOf(value: string | number, options: RevokeSessionsOptions = {}): Promise<number> {
    return settle(() => {
      const principal = principalArgument(value, 'revokeSessionsOf')
      if (typeof options !== 'object' || options === null) throw new TypeError('manager.revokeSessionsOf(value, options): options must be an object { except }')
      const except = options.except
      if (except !== undefined && typeof except !== 'string') throw new TypeError('manager.revokeSessionsOf(value, { except }): except must be a session id')
      return this.#principalsOrThrow().revoke(principal, except)
    })
  }

  #principalsOrThrow(): PrincipalSessions {
    this.#lifecycle.assertOpen()
    if (this.#principals === undefined)
      throw new SessionError('SESSION_INVALID_STATE', 'the sessions of a principal are listed only with the SessionManager option "principal"')
    return this.#principals
  }

  /** Flush pending writes, then close the storage. Idempotent; later requests and writes fail with `SESSION_CLOSED`. */
  close(callback?: SessionCallback): Promise<void> {
    return settle(() => {
      this.#coherence.close()
      return this.#lifecycle.close()
    }, callback)
  }

  /** Counters for monitoring. */
  stats(): SessionManagerStats {
    const { hits, misses, expired, evicted } = this.#counters
    const { loads, loadErrors, created, renewed, destroyed } = this.#lifecycle.counters
    return {
      cached: this.#cache.size,
      cachedBytes: this.#cache.bytes,
      pinned: this.#cache.pinnedSize,
      hits,
      misses,
      loads,
      loadErrors,
      created,
      renewed,
      destroyed,
      expired,
      evicted,
      pendingDestroys: this.#lifecycle.pendingDestroys,
      ...this.#lifecycle.queueStats(),
      ...this.#coherence.stats,
      bus: this.#coherence.busStats(),
    }
  }

  /** Milliseconds a cached copy is trusted on `storage`: never checked on one only this process can write. */
  #trustFor(storage: Storage, bus: boolean): number {
    if (!capabilitiesOf(storage).shared) return Infinity
    return this.#trustCacheForMs ?? (bus ? 10_000 : 1_000)
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
}

/** Whether `identity` keeps its sessions itself (a sealed cookie), so they need no storage. */
function carries(identity: Identity): boolean {
  return identity.carrier !== undefined
}

/**
 * What {@link SessionManager.ready} rejects with: a storage's own error says what failed (it
 * names the storage and, from `open()`, the backend's words); anything else is said after `what`.
 */
function notOpened(what: string, err: unknown): SessionError {
  const message = err instanceof SessionError ? err.message : `${what}: ${messageOf(err)}`
  return new SessionError('SESSION_STORAGE_UNAVAILABLE', message, { cause: err })
}

function handlerFailed(err: unknown): SessionError {
  return new SessionError('SESSION_HANDLER_FAILED', `a request handler failed: ${messageOf(err)}`, { cause: err })
}
