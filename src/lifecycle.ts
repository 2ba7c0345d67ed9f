import { SessionError, storageUnavailable } from './errors.js'
import { generateId } from './ids.js'
import { LIVE, type SessionPolicy } from './policy.js'
import type { PendingWrites, SessionCache } from './session-cache.js'
import type { RenewedState, SessionHost, Unstored } from './session.js'
import { SessionState, stateFromRecord } from './state.js'
import type { JsonValue, SessionData, SessionEvents, SessionRecord, Storage, StorageOperation } from './types.js'
import { freezeJson } from './values.js'
import { capabilitiesOf } from './kit/contract.js'
import { valueLimits, type ValueLimits } from './kit/limits.js'
import type { PrincipalIndex } from './principals.js'
import { Revocations, type RevocationKind } from './revocations.js'
import { WriteQueue, type Derive, type WriteQueueOptions, type WriteQueueStats } from './write-queue.js'

/** Emits a manager event; never throws. */
export type Notify = <E extends keyof SessionEvents>(event: E, ...args: SessionEvents[E]) => void

/** Tells the other processes about an acknowledged change (the invalidation bus, if any). */
export type Publish = (id: string, version: number, kind: 'write' | 'destroy' | 'renew') => Promise<void> | undefined

/** Counters the lifecycle keeps for `manager.stats()`. */
export interface LifecycleCounters {
  loads: number
  loadErrors: number
  created: number
  renewed: number
  destroyed: number
}

/**
 * Everything a session does with the storage: reading a session into the cache, creating,
 * writing, renewing and destroying one (the cache changes at once, the write goes through the
 * write queue), moving the idle deadline of a session in use, and what a failed or refused
 * write does to the cached copy. Sessions reach it as their {@link SessionHost}.
 * @internal
 */
export class SessionLifecycle implements SessionHost {
  readonly policy: SessionPolicy
  /** `maxSessionBytes` and the storage's declared limits: what `set()` refuses before anything changes. */
  limits: ValueLimits
  readonly counters: LifecycleCounters = { loads: 0, loadErrors: 0, created: 0, renewed: 0, destroyed: 0 }
  readonly #cache: SessionCache
  readonly #notify: Notify
  readonly #publish: Publish
  readonly #queueOptions: WriteQueueOptions
  /** Whether sessions carry their version to the client (a storage other processes share). */
  versioned = false
  /** How a session's principal follows its data (the `principal` option); `undefined` without one. */
  principals: PrincipalIndex | undefined = undefined
  /**
   * Called once a write that gave session `id` the principal `principal` was acknowledged
   * (`maxSessionsPerPrincipal`); the write settles after it. `undefined` without a bound.
   */
  onPrincipal: ((principal: string, id: string) => Promise<void>) | undefined = undefined
  #storage: Storage
  #queue: WriteQueue
  #closing: Promise<void> | undefined
  /** Revoked ids whose storage delete failed, deleted again until the storage acknowledges. */
  readonly #revocations: Revocations

  constructor(
    storage: Storage,
    queue: Omit<WriteQueueOptions, 'onFailure'>,
    policy: SessionPolicy,
    cache: SessionCache,
    notify: Notify,
    publish: Publish,
    maxPendingDestroys = 100_000,
  ) {
    this.policy = policy
    this.limits = valueLimits(policy.maxSessionBytes, capabilitiesOf(storage).limits, storage.name)
    this.#cache = cache
    this.#notify = notify
    this.#publish = publish
    this.#revocations = new Revocations({
      max: maxPendingDestroys,
      remove: (id) => this.#queue.enqueue({ type: 'delete', id }),
      confirmed: (id, version, kind) => void this.#confirmed(id, version, kind),
      gaveUp: (id, error) => {
        this.#cache.confirmRevoked(id)
        this.#notify('error', error)
      },
    })
    this.#queueOptions = {
      ...queue,
      onFailure: (id, error, dataWritten) => this.#writeFailed(id, error, dataWritten),
      versionOf: (id) => this.#own(id)?.version,
      onVersion: (id, version) => this.#acknowledged(id, version),
      onRebase: (id, record, data) => this.#rebased(id, record, data),
      principalOf: (data) => {
        const index = this.principals
        if (index === undefined) return undefined
        try {
          return { principal: index.of(data) }
        } catch {
          return undefined // another process wrote a value that cannot be indexed: leave the index as it is
        }
      },
    }
    this.#storage = storage
    this.#queue = new WriteQueue(storage, this.#queueOptions)
  }

  get storage(): Storage {
    return this.#storage
  }

  /** Which sessions have writes queued or in flight (what the cache's pinning asks). */
  readonly pending: PendingWrites = { has: (id) => this.#queue.has(id), idle: (id) => this.#queue.idle(id) }

  /** Use `storage` from now on; only while no write is pending. The cache is emptied: what it held belongs to the old storage. */
  replaceStorage(storage: Storage): void {
    this.assertOpen()
    if (this.#queue.pending > 0 || this.#revocations.size > 0)
      throw new SessionError('SESSION_INVALID_STATE', 'cannot replace the storage while writes are pending; call it at setup')
    this.limits = valueLimits(this.policy.maxSessionBytes, capabilitiesOf(storage).limits, storage.name)
    this.#storage = storage
    this.#queue = new WriteQueue(storage, this.#queueOptions)
    this.#cache.clear()
  }

  /** Flush pending writes, try once more each delete of a revoked session the storage has not acknowledged, then close the storage. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= this.#queue
      .flush()
      .then(() => this.#revocations.flush())
      .then(() => this.#storage.close()))
  }

  /** Destroyed or renewed-away ids whose storage delete failed and is being retried. */
  get pendingDestroys(): number {
    return this.#revocations.size
  }

  /** Throws `SESSION_CLOSED` once closing began. */
  assertOpen(): void {
    if (this.#closing !== undefined) throw new SessionError('SESSION_CLOSED', 'the session manager is closed')
  }

  /** Throws when no write can be accepted now (closed, queue full). */
  assertWritable(): void {
    this.assertOpen()
    this.#queue.assertCapacity()
  }

  queueStats(): WriteQueueStats {
    return this.#queue.stats()
  }

  /**
   * The live session of `id` from the storage, cached; `undefined` when the storage has none
   * (or an unusable record, reported on `error`). Concurrent reads of one id share one storage
   * call. Rejects with `SESSION_STORAGE_UNAVAILABLE` (503) when the storage cannot be read: a
   * failure is never taken for "no session".
   */
  read(id: string): Promise<SessionState | undefined> {
    return this.#cache.load(id, () => this.#readStorage(id))
  }

  /**
   * A session in use at `now`: when its idle deadline is due to move (`touchAfter`), move it in
   * the cache and queue the storage touch (unless the queue is full). Whether it moved, so the
   * identity re-issues the id with the new deadline.
   */
  extend(state: SessionState, now: number): boolean {
    const deadline = this.policy.touchDue(state, now)
    if (deadline === undefined) return false
    // A deadline beyond what the configuration allows is brought back here even when the queue is full.
    if (deadline < state.expiresAt) state.expiresAt = deadline
    if (!this.#queue.hasCapacity()) return false
    state.expiresAt = deadline
    this.#queue.enqueue({ type: 'touch', id: state.id, expiresAt: deadline }).then(
      (applied) => {
        if (!applied) this.#cache.markGone(state)
      },
      noop, // reported once by #writeFailed
    )
    return true
  }

  latest(state: SessionState): SessionState {
    return this.#cache.latestOrRecache(state)
  }

  create(state: SessionState, unstored?: Unstored): Promise<void> {
    this.counters.created++
    this.#cache.add(state)
    this.#notify('create', state.id)
    const stored = this.write(state, { type: 'set', id: state.id, record: state.record() })
    if (unstored === undefined) return stored
    // The record was never stored: the id issued for it names nothing, so it is taken back.
    return stored.catch((err: unknown) => {
      unstored(state.id)
      throw err
    })
  }

  write(state: SessionState, op: StorageOperation, derive?: Derive): Promise<void> {
    if (op.type === 'update' || op.type === 'remove') this.#cache.resized(state)
    const written = this.#queue.enqueue(op, derive).then((applied) => {
      if (!applied && op.id === state.id && op.type !== 'delete') throw this.#gone(state)
    })
    const onPrincipal = this.onPrincipal
    if (onPrincipal === undefined) return written
    const principal = op.type === 'set' ? op.record.principal : op.type === 'update' || op.type === 'remove' ? op.principal : undefined
    return typeof principal === 'string' ? written.then(() => onPrincipal(principal, op.id)) : written
  }

  /**
   * Destroy the session of `id` as {@link SessionLifecycle.destroy} does, whether or not this
   * process has it cached (`version` is the one the storage listed): revoked here at once, its
   * record deleted (retried in the background if that fails), the other processes told.
   */
  revoke(id: string, version: number): Promise<void> {
    this.assertOpen()
    const cached = this.#cache.peek(id)
    if (cached !== undefined && cached.id === id) {
      cached.destroyed = true
      version = Math.max(version, cached.version)
    }
    this.counters.destroyed++
    this.#cache.revoke(id)
    this.#notify('destroy', id)
    return this.#deleteRevoked(id, version, 'destroy')
  }

  /** Whether `id` was destroyed or renewed away here (its delete perhaps still pending). */
  isRevoked(id: string): boolean {
    return this.#cache.isRevoked(id)
  }

  renew(old: SessionState, unstored?: Unstored): RenewedState {
    const oldId = old.id
    const oldVersion = old.version
    // A new state under the new id: requests still holding the old one keep its id and data as
    // they are now, and can no longer write (see `SessionState.renewed`). The new id's record is
    // a new record: its first write creates it, at version 1.
    const state = new SessionState(generateId(), old.data, old.createdAt, old.expiresAt, old.absoluteExpiresAt)
    state.bytes = old.bytes
    state.validatedAt = old.validatedAt
    state.issuer = old.issuer // renew keeps the identity the session is bound to
    state.principal = old.principal
    old.renewed = true
    const newId = state.id
    this.counters.renewed++
    this.#cache.rename(state, oldId)
    this.#notify('renew', newId, oldId)
    // Touching the old record tells whether the storage still has the session: another process
    // may have destroyed it while this one kept it cached, and a renew must not revive it.
    const stillLive = this.#queue.enqueue({ type: 'touch', id: oldId, expiresAt: state.expiresAt })
    const created = this.write(state, { type: 'set', id: newId, record: state.record() })
    // The old record goes only after the new one is stored, so writes still queued for the old
    // id settle after their data is safe under the new one. It goes even if that failed: a
    // renewed id must not come back.
    const snapshot = state.data
    const revokeOld = (): Promise<void> =>
      this.#deleteRenewed(state, oldId, oldVersion, snapshot).then(
        () => this.#confirmed(oldId, oldVersion, 'renew'),
        (err: unknown) => {
          this.#revocations.add(oldId, oldVersion, 'renew')
          throw err
        },
      )
    // Both settle before `stored` does, so the new id is taken back (below) before the caller
    // hears of a failure, even when the touch failed first.
    const stored = Promise.allSettled([stillLive, created]).then(([live, made]) => {
      if (made.status === 'rejected') {
        // The old id goes even though the new one was not stored (a renewed id must not come
        // back), and the new id, which names nothing, is taken back: the client keeps its old
        // credential, which now opens nothing, so its next request starts a new session.
        unstored?.(newId)
        this.#deleteRevoked(oldId, oldVersion, 'renew').catch(noop)
        throw made.reason
      }
      if (live.status === 'rejected') {
        // The new id is stored and its credential stays; the old id goes all the same.
        this.#deleteRevoked(oldId, oldVersion, 'renew').catch(noop)
        throw live.reason
      }
      if (!live.value) {
        // Destroyed elsewhere: undo the copy (only this client ever saw the new id), and take the new id back.
        this.write(state, { type: 'delete', id: newId }).catch(noop)
        unstored?.(newId)
        this.#deleteRevoked(oldId, oldVersion, 'renew').catch(noop)
        throw this.#gone(state)
      }
      return revokeOld()
    })
    return { state, stored }
  }

  /**
   * Delete the renewed-away record of `oldId`. On a shared storage the delete is conditional on
   * the version this process copied (`copiedVersion`, data `copied`): if another process wrote
   * the old id since, what it changed is carried to the new id first (keys this process changed
   * since the renew keep its value), then the delete is tried again; after three tries it is
   * unconditional. A renewed id never comes back, and no write acknowledged on the old id is lost.
   */
  async #deleteRenewed(state: SessionState, oldId: string, copiedVersion: number, copied: SessionData): Promise<void> {
    let expected = this.versioned && copiedVersion > 0 ? copiedVersion : undefined
    let seen = copied
    for (let round = 0; ; round++) {
      const outcome = await this.#queue.enqueue({ type: 'delete', id: oldId, ifVersion: round < 3 ? expected : undefined })
      if (outcome !== 'conflict') return
      let fresh: SessionRecord | undefined
      try {
        fresh = await this.#storage.get(oldId)
      } catch {
        expected = undefined // cannot read what changed: the old id still has to go
        continue
      }
      if (fresh === undefined) return
      await this.#carry(state, seen, fresh.data)
      seen = fresh.data
      expected = fresh.version
    }
  }

  /** Write to `state` what changed between `before` and `after` of the record it was renewed from, except keys changed here since. */
  #carry(state: SessionState, before: SessionData, after: SessionData): Promise<unknown> {
    const writes: Array<Promise<void>> = []
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const was = Object.hasOwn(before, key) ? before[key] : undefined
      const now = Object.hasOwn(after, key) ? after[key] : undefined
      if (JSON.stringify(was) === JSON.stringify(now)) continue
      if ((Object.hasOwn(state.data, key) ? state.data[key] : undefined) !== was) continue
      if (state.destroyed) break
      const { id, expiresAt } = state
      state.bytes = -1
      if (now === undefined) {
        const { [key]: _gone, ...rest } = state.data
        state.data = Object.freeze(rest)
        writes.push(this.write(state, this.#withPrincipal(state, key, { type: 'remove', id, key, expiresAt })))
      } else {
        const value: Record<string, JsonValue> = { [key]: now }
        if (!freezeJson(value, 0)) continue
        state.data = Object.freeze({ ...state.data, ...value })
        writes.push(this.write(state, this.#withPrincipal(state, key, { type: 'update', id, key, value: now, expiresAt })))
      }
    }
    return Promise.all(writes)
  }

  /**
   * `op`, a write of `key` that already changed `state.data`, with the principal change it
   * makes; a principal the data cannot give (another process wrote a bad value) leaves it as it was.
   */
  #withPrincipal<O extends Extract<StorageOperation, { type: 'update' | 'remove' }>>(state: SessionState, key: string, op: O): O {
    const index = this.principals
    if (index === undefined || !index.affects(key)) return op
    let principal
    try {
      principal = index.change(state, state.data)
    } catch {
      return op
    }
    if (principal === undefined) return op
    state.principal = principal ?? undefined
    return { ...op, principal }
  }

  destroy(state: SessionState): Promise<void> {
    // A full queue does not stop a destroy (revoking matters more than the bound), a closed manager does.
    this.assertOpen()
    state.destroyed = true
    this.counters.destroyed++
    this.#cache.revoke(state.id)
    const { id, version } = state
    this.#notify('destroy', id)
    return this.#deleteRevoked(id, version, 'destroy')
  }

  /**
   * Delete the record of `id`, revoked here. Once the storage acknowledged, the storage itself
   * refuses the id and the other processes are told; if the delete failed for good (the caller
   * is told), it is retried in the background until the storage acknowledges, and the id stays
   * refused here meanwhile, whatever the traffic.
   */
  #deleteRevoked(id: string, version: number, kind: RevocationKind): Promise<void> {
    return this.#queue.enqueue({ type: 'delete', id }).then(
      () => this.#confirmed(id, version, kind),
      (err: unknown) => {
        this.#revocations.add(id, version, kind)
        throw err
      },
    )
  }

  /** The storage acknowledged the delete of revoked `id`. */
  #confirmed(id: string, version: number, kind: RevocationKind): Promise<void> | undefined {
    this.#cache.confirmRevoked(id)
    return this.#publish(id, version, kind)
  }

  async #readStorage(id: string): Promise<SessionState | undefined> {
    // After a failed write the cache was dropped: read only once the storage holds the outcome.
    if (this.#queue.has(id)) await this.#queue.idle(id)
    this.counters.loads++
    let record: SessionRecord | undefined
    try {
      record = await this.#storage.get(id)
    } catch (err) {
      if (err instanceof SessionError && err.code === 'SESSION_INVALID_RECORD') {
        this.#notify('error', err)
        return undefined
      }
      this.counters.loadErrors++
      throw storageUnavailable('SESSION_STORAGE_UNAVAILABLE', 'a session could not be read', err)
    }
    if (record === undefined || record === null) return undefined
    const now = this.policy.now()
    const state = stateFromRecord(id, record, this.policy, now)
    if (typeof state === 'string') {
      const message = `the ${this.#storage.name} storage returned an unusable session record (${state}); treating it as absent`
      this.#notify('error', new SessionError('SESSION_INVALID_RECORD', message))
      return undefined
    }
    state.validatedAt = now
    return this.policy.status(state, now) === LIVE ? state : undefined
  }

  /** The cached state that `id` names now (not one renamed away from it), unless its writes failed. */
  #own(id: string): SessionState | undefined {
    const state = this.#cache.peek(id)
    return state !== undefined && state.id === id && !state.detached ? state : undefined
  }

  // Data writes of `id` landed: the record is at `version`, as the cache shows it.
  #acknowledged(id: string, version: number): void {
    const state = this.#own(id)
    if (state !== undefined) {
      state.version = version
      state.validatedAt = this.policy.now()
    }
    void this.#publish(id, version, 'write') // a write never waits for the bus
  }

  // Another process wrote the record meanwhile: the cache shows its record with this process's pending writes applied.
  #rebased(id: string, record: SessionRecord, data: SessionData): void {
    const state = this.#own(id)
    if (state === undefined || state.destroyed) return
    if (!freezeJson(data, 0)) {
      this.#cache.detach(id)
      return
    }
    state.data = data
    state.bytes = -1
    this.#cache.resized(state)
    state.principal = this.#principalAfterRebase(record, data)
    state.version = record.version
    state.validatedAt = this.policy.now()
    // Another process's later deadline, never beyond what this configuration allows now.
    if (record.expiresAt > state.expiresAt) state.expiresAt = Math.min(record.expiresAt, this.policy.deadline(state.absoluteExpiresAt, state.validatedAt))
  }

  // What the storage indexes once the rebased writes land: the principal of the data they make,
  // as far as this process can tell (a write of the principal carries it); else the record's.
  #principalAfterRebase(record: SessionRecord, data: SessionData): string | undefined {
    const index = this.principals
    if (index === undefined) return record.principal
    try {
      return index.of(data)
    } catch {
      return record.principal
    }
  }

  // The storage no longer has the record (destroyed or expired elsewhere): so neither do we.
  #gone(state: SessionState): SessionError {
    this.#cache.markGone(state)
    return new SessionError('SESSION_DESTROYED', 'the session no longer exists in storage (destroyed or expired); the write was not kept')
  }

  #writeFailed(id: string, error: SessionError, dataWritten: boolean): void {
    // What the cache shows must not outlive what the storage holds: the next request reloads.
    // A failed touch changed no data, so the cached session still matches storage and is kept
    // (dropping it would turn every request of an outage into a 503).
    if (dataWritten) this.#cache.detach(id)
    // A revoked id's delete being retried in the background was reported when it first failed.
    if (!this.#revocations.has(id)) this.#notify('error', error)
  }
}

function noop(): void {}
