import { SessionError } from './errors.js'
import { generateId } from './ids.js'
import type { SessionPolicy } from './policy.js'
import { newState, type SessionState } from './state.js'
import type { Identity, JsonValue, SessionData, SessionRequest, SessionResponse, StorageOperation } from './types.js'
import type { Derive } from './write-queue.js'
import type { ValueLimits } from './kit/limits.js'
import type { PrincipalChange } from './kit/contract.js'
import type { PrincipalIndex } from './principals.js'
import { assertKey, dataBytes, entryBytes, jsonBytes, normalizeValue } from './values.js'

/** A node-style callback accepted by every asynchronous session method. */
export type SessionCallback = (error: Error | null) => void

/** The callback of {@link Session.update}: the stored value once acknowledged. */
export type UpdateCallback<V> = (error: Error | null, value?: V) => void

/**
 * What a session needs of its manager: the rules of time and size, and the operations that
 * change the cache and reach the storage. Each write method changes the cache at once and
 * returns the promise of the storage's acknowledgement.
 * @internal
 */
export interface SessionHost {
  readonly policy: SessionPolicy
  /** What a value may be: `maxSessionBytes` and the storage's declared limits (nesting, Unicode). */
  readonly limits: ValueLimits
  /** Whether the client is handed the version of each acknowledged write (other processes share the storage). */
  readonly versioned: boolean
  /** How a session's principal follows its data (the `principal` option); `undefined` without one. */
  readonly principals: PrincipalIndex | undefined
  /** Throws `SESSION_CLOSED` once the manager is closed. */
  assertOpen(): void
  /** Throws when no write can be accepted now (closed, queue full). */
  assertWritable(): void
  /** The state to write to for `state.id`: the cached object (a newer load), or `state` cached again (see `SessionCache.latestOrRecache`). */
  latest(state: SessionState): SessionState
  /**
   * Cache a new session and store it. `unstored`, if given, is called with the session's id
   * when that first write fails, before the promise rejects.
   */
  create(state: SessionState, unstored?: Unstored): Promise<void>
  /**
   * Queue a write of `state`; rejects with `SESSION_DESTROYED` when the storage no longer has
   * the record the write needed (destroyed or expired there).
   */
  write(state: SessionState, op: StorageOperation, derive?: Derive): Promise<void>
  /**
   * Move `state` to a new id at once: a new state under the new id is cached in its place (the
   * old id is revoked, `state` marked renewed), then it is stored and the old record deleted.
   * `unstored`, if given, is called with the new id when the new id is not kept in storage (its
   * write failed), before `stored` rejects.
   */
  renew(state: SessionState, unstored?: Unstored): RenewedState
  /** Mark `state` destroyed and revoked at once, then delete its record. */
  destroy(state: SessionState): Promise<void>
}

/**
 * Told the id of a new session (or of a renewed one) that the storage did not keep, so the
 * credential issued for it can be taken back.
 * @internal
 */
export type Unstored = (id: string) => void

/**
 * What {@link SessionHost.renew} gives back: the state under the new id, and the promise of its storage.
 * @internal
 */
export interface RenewedState {
  readonly state: SessionState
  readonly stored: Promise<void>
}

const hasOwn = Object.hasOwn

/**
 * A session as one request sees it. Reads are synchronous and come from the process's cache;
 * writes change the cache at once and return a promise that settles when the storage has
 * acknowledged them (or take a trailing node-style callback).
 *
 * Values are JSON: what `get` returns after `set` is what a fresh process would load (a
 * `Date` comes back as its ISO string). Returned objects are frozen, so the cache can never
 * silently differ from the storage: change a copy and `set` it.
 *
 * @example
 * ```ts
 * const views = (session.get('views') ?? 0) + 1
 * await session.set('views', views)
 * ```
 */
export class Session<D extends object = SessionData> {
  /** True when this request started the session (nothing was loaded for it). */
  readonly isNew: boolean
  readonly #host: SessionHost
  readonly #req: SessionRequest
  readonly #res: SessionResponse
  readonly #identity: Identity | undefined
  #state: SessionState | undefined
  #reservedId: string | undefined

  /** @internal Sessions are made by the manager: `manager.load(req, res)` or the middleware. */
  constructor(host: SessionHost, req: SessionRequest, res: SessionResponse, identity: Identity | undefined, state: SessionState | undefined) {
    this.#host = host
    this.#req = req
    this.#res = res
    this.#identity = identity
    this.#state = state
    this.isNew = state === undefined
  }

  /**
   * The session id. For a new session nothing is stored or sent until data is first written.
   * It is the id this request resolved (or gave the session with its own `renew()`): a renew
   * made by another request never shows here.
   */
  get id(): string {
    return this.#state?.id ?? (this.#reservedId ??= generateId())
  }

  /** Whether the session was destroyed (here or by another request). */
  get isDestroyed(): boolean {
    return this.#state?.destroyed === true
  }

  /** The idle deadline in epoch ms, or `undefined` while nothing has been written. */
  get expiresAt(): number | undefined {
    return this.#state?.expiresAt
  }

  /** The name of the identity this session answers through (e.g. `cookie:sid`). */
  get identity(): string | undefined {
    return this.#identity?.name
  }

  /**
   * The value of `key`, synchronously from the cache: never a promise, never I/O.
   * `__proto__`, `constructor` and the like are ordinary keys. Once another request renewed the
   * session, this request keeps reading the data as it was at that renew: it never sees what is
   * written under the new id.
   */
  get<K extends keyof D & string>(key: K): D[K] | undefined {
    const state = this.#state
    if (state === undefined || state.destroyed) return undefined
    const data = state.data
    return hasOwn(data, key) ? (data[key] as D[K]) : undefined
  }

  /** A frozen snapshot of all data, synchronously. */
  getAll(): Readonly<Partial<D>> {
    const state = this.#state
    if (state === undefined || state.destroyed) return EMPTY as Readonly<Partial<D>>
    return state.data as Readonly<Partial<D>>
  }

  /**
   * Set `key` to a JSON value. The cache changes at once; the promise settles when the storage
   * has acknowledged. Rejects at once, storing nothing, with `SESSION_INVALID_VALUE`,
   * `SESSION_INVALID_KEY` or `SESSION_TOO_LARGE`, and with `SESSION_RENEWED` once another
   * request renewed the session.
   */
  set<K extends keyof D & string>(key: K, value: D[K], callback?: SessionCallback): Promise<void> {
    return settle(() => this.#set(key, value, undefined), callback)
  }

  /**
   * Set `key` to what `fn` makes of its current value: an atomic read-modify-write across
   * processes. The cache changes at once with `fn` of the cached value; if another process
   * wrote the session meanwhile, `fn` is run again on the freshest stored value before the
   * write is stored, so no increment or cart item is lost. Resolves with the value stored.
   * `fn` must be pure (it may run more than once) and return a JSON value; if it throws, the
   * write is given up with its error.
   *
   * @example
   * ```ts
   * const visits = await session.update('visits', (n) => (n ?? 0) + 1)
   * ```
   */
  update<K extends keyof D & string>(key: K, fn: (current: D[K] | undefined) => D[K], callback?: UpdateCallback<D[K]>): Promise<D[K]> {
    return settle(() => this.#update(key, fn), callback)
  }

  /** Remove `key`. Settles when the storage has acknowledged. */
  remove(key: keyof D & string, callback?: SessionCallback): Promise<void> {
    return settle(() => this.#remove(key), callback)
  }

  /** Remove all data, keeping the id and the cookie. Settles when the storage has acknowledged. */
  clear(callback?: SessionCallback): Promise<void> {
    return settle(() => this.#clear(), callback)
  }

  /**
   * Give the session a new id (do it on login and any privilege change). The data stays; the old
   * id stops working at once, here and in storage; the identity that issued the session sends
   * the new id. Other requests that loaded the session under the old id keep the old id and
   * what they read; their writes, `renew()` and `destroy()` reject with `SESSION_RENEWED`.
   * Renew before writing what the new privilege allows (the user), not after.
   */
  renew(callback?: SessionCallback): Promise<void> {
    return settle(() => this.#renew(), callback)
  }

  /** Delete the session's data in cache and storage, and tell the client to forget its id. */
  destroy(callback?: SessionCallback): Promise<void> {
    return settle(() => this.#destroy(), callback)
  }

  /** The data, for `JSON.stringify(session)`. */
  toJSON(): Readonly<Partial<D>> {
    return this.getAll()
  }

  #live(): SessionState | undefined {
    const state = this.#state
    if (state === undefined) return undefined
    if (state.renewed) throw renewedAway()
    if (state.destroyed) throw new SessionError('SESSION_DESTROYED', 'the session was destroyed; a write cannot bring it back')
    return (this.#state = this.#host.latest(state))
  }

  #update<V>(key: string, fn: (current: V | undefined) => V): Promise<V> {
    const limits = this.#host.limits
    assertKey(key, limits)
    if (typeof fn !== 'function') throw new TypeError('session.update(key, fn): fn must be a function of the current value')
    let last: JsonValue | undefined
    const derive: Derive = (current) => (last = normalizeValue(key, fn(current as V | undefined), limits).value)
    const state = this.#live()
    const current = state !== undefined && hasOwn(state.data, key) ? state.data[key] : undefined
    return this.#set(key, derive(current), derive).then(() => last as V)
  }

  #set(key: string, value: unknown, derive: Derive | undefined): Promise<void> {
    const host = this.#host
    const limits = host.limits
    assertKey(key, limits)
    const maxBytes = limits.maxBytes
    const state = this.#live()
    const normalized = normalizeValue(key, value, limits)
    host.assertWritable()
    const entry = entryBytes(key, normalized.bytes)
    let bytes = entry + 1
    if (state !== undefined) {
      if (state.bytes < 0) state.bytes = dataBytes(state.data)
      bytes = state.bytes - (hasOwn(state.data, key) ? entryBytes(key, jsonBytes(state.data[key]!)) : 0) + entry
    }
    if (bytes > maxBytes) {
      throw new SessionError('SESSION_TOO_LARGE', `setting "${key}" would make the session ${bytes} bytes, over maxSessionBytes (${maxBytes})`)
    }
    if (state === undefined) return this.#create(key, normalized.value, bytes)
    const data = Object.freeze({ ...state.data, [key]: normalized.value })
    const index = host.principals
    const principal = index === undefined || !index.affects(key) ? undefined : index.change(state, data)
    return this.#change(
      state,
      data,
      bytes,
      () => {
        const op: StorageOperation = { type: 'update', id: state.id, key, value: normalized.value, expiresAt: state.expiresAt }
        return host.write(state, principal === undefined ? op : { ...op, principal }, derive)
      },
      principal,
    )
  }

  /**
   * Give `state` its new `data` (and `principal`, when it changes) at once and send the write; a
   * write refused before it started (a sealed session that no longer fits in its cookie, headers
   * already sent) leaves the session as it was.
   */
  #change(state: SessionState, data: SessionData, bytes: number, send: () => Promise<void>, principal?: PrincipalChange): Promise<void> {
    const previous = state.data
    const previousBytes = state.bytes
    state.data = data
    state.bytes = bytes
    let written: Promise<void>
    try {
      written = send()
    } catch (err) {
      state.data = previous
      state.bytes = previousBytes
      throw err
    }
    if (principal !== undefined) state.principal = principal ?? undefined
    return this.#acknowledged(written)
  }

  /** Hand the client the session's id with its deadline, unless the identity carries the session itself (its host sealed it already). */
  #issue(identity: Identity, id: string, expiresAt: number): void {
    if (identity.carrier === undefined) identity.set(this.#req, this.#res, id, expiresAt)
  }

  /**
   * What takes back the credential `identity` issues on this response for an id the storage did
   * not keep: nothing for an identity that cannot withdraw or that carries the session itself
   * (nothing is stored for those).
   */
  #unstored(identity: Identity): Unstored | undefined {
    if (identity.withdraw === undefined || identity.carrier !== undefined) return undefined
    return (id) => {
      // Once the headers are sent the client has the id; the write's error still reaches the caller.
      if (this.#res.headersSent) return
      try {
        identity.withdraw!(this.#req, this.#res, id)
      } catch {
        // The caller needs the write's own error, not the identity's; the response keeps the id.
      }
    }
  }

  /**
   * `written`, and then, once the storage acknowledged it, the client's credential re-issued
   * with the session's new version (when other processes share the storage and the response is
   * not sent yet): another process that serves the client's next request reads this version or
   * a newer one, never an older copy.
   */
  #acknowledged(written: Promise<void>): Promise<void> {
    if (!this.#host.versioned || this.#identity?.versionOf === undefined) return written
    return written.then(() => {
      const state = this.#state
      if (state === undefined || state.destroyed || state.renewed || state.version === 0 || this.#res.headersSent) return
      this.#identity!.set(this.#req, this.#res, state.id, state.expiresAt, state.version)
    })
  }

  #create(key: string, value: SessionData[string], bytes: number): Promise<void> {
    const host = this.#host
    const identity = this.#identity
    if (identity === undefined) throw new SessionError('SESSION_NO_IDENTITY', 'no identity matches this request, so a new session id cannot be issued')
    if (this.#res.headersSent)
      throw new SessionError(
        'SESSION_HEADERS_SENT',
        'the response headers were already sent, so the new session id cannot be issued; write to the session before responding',
      )
    const data = Object.freeze({ [key]: value })
    const principal = host.principals?.of(data)
    const state = newState(this.#reservedId ?? generateId(), data, host.policy.now(), host.policy)
    state.issuer = identity.name
    state.principal = principal
    state.bytes = bytes
    const stored = host.create(state, this.#unstored(identity))
    this.#state = state
    this.#issue(identity, state.id, state.expiresAt)
    return this.#acknowledged(stored)
  }

  #remove(key: string): Promise<void> {
    assertKey(key, this.#host.limits)
    const state = this.#live()
    if (state === undefined || !hasOwn(state.data, key)) return Promise.resolve()
    this.#host.assertWritable()
    const { [key]: removed, ...rest } = state.data
    const bytes = state.bytes >= 0 ? state.bytes - entryBytes(key, jsonBytes(removed!)) : -1
    const data = Object.freeze(rest)
    const index = this.#host.principals
    const principal = index === undefined || !index.affects(key) ? undefined : index.change(state, data)
    return this.#change(
      state,
      data,
      bytes,
      () => {
        const op: StorageOperation = { type: 'remove', id: state.id, key, expiresAt: state.expiresAt }
        return this.#host.write(state, principal === undefined ? op : { ...op, principal })
      },
      principal,
    )
  }

  #clear(): Promise<void> {
    const state = this.#live()
    if (state === undefined) return Promise.resolve()
    const keys = Object.keys(state.data)
    if (keys.length === 0) return Promise.resolve()
    this.#host.assertWritable()
    // One remove per key, never a whole-record set: a set would recreate a record that another
    // process destroyed meanwhile and bring a logged-out id back; a remove needs a live record.
    const { id, expiresAt } = state
    const index = this.#host.principals
    const principal = index?.change(state, EMPTY)
    // The remove of the principal's own key carries the change (any one would do for a function principal).
    const carrier = principal === undefined ? undefined : index!.key !== undefined && keys.includes(index!.key) ? index!.key : keys[0]
    const removeOf = (key: string): StorageOperation =>
      key === carrier ? { type: 'remove', id, key, expiresAt, principal } : { type: 'remove', id, key, expiresAt }
    return this.#change(state, EMPTY, 2, () => Promise.all(keys.map((key) => this.#host.write(state, removeOf(key)))).then(noop), principal)
  }

  #renew(): Promise<void> {
    const state = this.#live()
    if (state === undefined) {
      // Nothing stored yet: just make sure the id given out later is not one already seen.
      this.#reservedId = undefined
      return Promise.resolve()
    }
    const host = this.#host
    host.assertWritable()
    if (this.#res.headersSent)
      throw new SessionError('SESSION_HEADERS_SENT', 'the response headers were already sent, so the renewed session id cannot be issued')
    const identity = this.#identity
    const renewed = host.renew(state, identity === undefined ? undefined : this.#unstored(identity))
    this.#state = renewed.state
    if (identity !== undefined) this.#issue(identity, renewed.state.id, renewed.state.expiresAt)
    return this.#acknowledged(renewed.stored)
  }

  #destroy(): Promise<void> {
    const state = this.#state
    if (state === undefined || state.destroyed) return Promise.resolve()
    // The session lives on under an id this request never had: it cannot end it, nor clear the cookie that now holds the new id.
    if (state.renewed) throw renewedAway()
    const destroyed = this.#host.destroy(state)
    if (!this.#res.headersSent) this.#identity?.remove(this.#req, this.#res)
    return destroyed
  }
}

const EMPTY: SessionData = Object.freeze({})

/**
 * Assigning a property a session does not have (`req.session.user = 'x'`, as express-session and
 * koa-session are written) throws a `TypeError` pointing to `session.set()`, instead of being
 * silently dropped. The check sits in the prototype chain, after the class prototype: an
 * assignment reaches it only when no own or class property of that name exists, so reads and
 * `get()` never pass through it. Symbol keys are let through.
 */
Object.setPrototypeOf(
  Session.prototype,
  new Proxy(Object.create(Object.getPrototypeOf(Session.prototype) as object | null) as object, {
    set(target, key, value, receiver) {
      if (typeof key === 'symbol') return Reflect.set(target, key, value, receiver)
      throw new TypeError(`a session has no property "${key}": write session data with session.set('${key}', value)`)
    },
  }),
)

function renewedAway(): SessionError {
  return new SessionError(
    'SESSION_RENEWED',
    'another request renewed this session after this request loaded it; this request can read what it loaded but not change the session',
  )
}

function noop(): void {}

/**
 * Run `work`, turn a synchronous throw into a rejection, call `callback` if given, and mark the
 * promise handled: an ignored failed write never becomes an unhandled rejection (the manager
 * reports storage failures on its `error` event).
 */
export function settle<T>(work: () => Promise<T>, callback?: UpdateCallback<T>): Promise<T> {
  let promise: Promise<T>
  try {
    promise = work()
  } catch (err) {
    promise = Promise.reject(err)
  }
  if (typeof callback === 'function')
    promise.then(
      (value) => callback(null, value),
      (err: Error) => callback(err),
    )
  else promise.catch(noop)
  return promise
}
