import { SessionError } from './errors.js'
import type { BatchOutcome, JsonValue, SessionRecordInput, Storage, StorageOperation } from './types.js'

/** Options of {@link WriteQueue}; the manager passes its own. */
export interface WriteQueueOptions {
  /** Retries of a failed write before it rejects. Default 3. */
  retries?: number
  /** First backoff delay in ms; doubles on each retry, with jitter. Default 50. */
  retryDelay?: number
  /** Longest backoff delay in ms. Default 2000. */
  maxRetryDelay?: number
  /** Writes that may wait at once before new ones are refused with `SESSION_QUEUE_FULL`. Default 100_000. */
  maxPending?: number
  /** Most operations in one `storage.batch` call. Default 500. */
  maxBatchSize?: number
  /** Storage calls (or batches) in flight at once. Default 64 without batching, 2 with it. */
  concurrency?: number
  /** Use `storage.batch` when the storage has it. Default true. */
  batching?: boolean
  /**
   * Called once when a session's writes failed for good; the manager drops its cached copy
   * unless `dataWritten` is false (only touches failed: the data the cache shows is still stored).
   */
  onFailure?: (id: string, error: SessionError, dataWritten: boolean) => void
}

type MutableOperation =
  | { type: 'set'; id: string; record: SessionRecordInput }
  | { type: 'update'; id: string; key: string; value: JsonValue; expiresAt: number }
  | { type: 'remove'; id: string; key: string; expiresAt: number }
  | { type: 'delete'; id: string }
  | { type: 'touch'; id: string; expiresAt: number }

interface Waiter {
  resolve(applied: boolean): void
  reject(error: SessionError): void
}

interface Entry {
  op: MutableOperation
  waiters: Waiter[]
  attempts: number
}

interface Lane {
  readonly id: string
  queued: Entry[]
  inflight: Entry[] | undefined
  retryTimer: NodeJS.Timeout | undefined
  idleWaiters: Array<() => void> | undefined
}

/** Counters of a {@link WriteQueue}, part of `manager.stats()`. */
export interface WriteQueueStats {
  /** Writes accepted and not yet settled (after coalescing). */
  pendingWrites: number
  /** Storage calls or batches in flight. */
  inflight: number
  /** Storage calls made (a batch counts once). */
  storageCalls: number
  /** Operations sent to the storage. */
  operations: number
  /** Writes folded into a queued one for the same session. */
  coalesced: number
  /** Retries after a failure. */
  retries: number
  /** Writes that failed for good. */
  failures: number
}

/**
 * Per-session ordered write-through to a storage. Writes of one session reach the storage in
 * the order they were made, one round at a time; while a round is in flight, later writes of
 * that session wait and are coalesced (last value per key wins, a whole-record set or a delete
 * absorbs what came before). Waiting writes of many sessions go out together through
 * `storage.batch` when the storage has one. A promise settles only when the storage has
 * acknowledged the operation that covers it.
 */
export class WriteQueue {
  readonly #storage: Storage
  readonly #retries: number
  readonly #retryDelay: number
  readonly #maxRetryDelay: number
  readonly #maxPending: number
  readonly #maxBatchSize: number
  readonly #concurrency: number
  readonly #batch: ((ops: readonly StorageOperation[]) => Promise<BatchOutcome[]>) | undefined
  readonly #onFailure: ((id: string, error: SessionError, dataWritten: boolean) => void) | undefined
  readonly #lanes = new Map<string, Lane>()
  #ready: Lane[] = []
  #pumpScheduled = false
  #pending = 0
  #flushWaiters: Array<() => void> = []
  readonly #stats = { inflight: 0, storageCalls: 0, operations: 0, coalesced: 0, retries: 0, failures: 0 }

  constructor(storage: Storage, options: WriteQueueOptions = {}) {
    this.#storage = storage
    this.#retries = options.retries ?? 3
    this.#retryDelay = options.retryDelay ?? 50
    this.#maxRetryDelay = options.maxRetryDelay ?? 2000
    this.#maxPending = options.maxPending ?? 100_000
    this.#maxBatchSize = options.maxBatchSize ?? 500
    const batching = (options.batching ?? true) && typeof storage.batch === 'function'
    this.#batch = batching ? storage.batch!.bind(storage) : undefined
    this.#concurrency = options.concurrency ?? (batching ? 2 : 64)
    this.#onFailure = options.onFailure
  }

  /** Writes accepted and not yet settled. */
  get pending(): number {
    return this.#pending
  }

  /** Whether `id` has writes queued or in flight. */
  has(id: string): boolean {
    return this.#lanes.has(id)
  }

  /** Whether another write can be accepted now. */
  hasCapacity(): boolean {
    return this.#pending < this.#maxPending
  }

  /** Throws `SESSION_QUEUE_FULL` when no more writes can be accepted; call before changing the cache. */
  assertCapacity(): void {
    if (!this.hasCapacity()) {
      throw new SessionError(
        'SESSION_QUEUE_FULL',
        `${this.#pending} session writes are waiting for the ${this.#storage.name} storage; refusing more until it catches up`,
      )
    }
  }

  /**
   * Queue one write. Resolves `true` when the storage applied it, `false` when it needed a live
   * record the storage does not have; rejects with `SESSION_STORAGE_FAILED` after the retries.
   */
  enqueue(operation: StorageOperation): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject }
      const op = { ...operation } as MutableOperation
      let lane = this.#lanes.get(op.id)
      if (lane === undefined) {
        lane = { id: op.id, queued: [], inflight: undefined, retryTimer: undefined, idleWaiters: undefined }
        this.#lanes.set(op.id, lane)
      }
      const before = lane.queued.length
      lane.queued = this.#fold(lane.queued, op, [waiter])
      const added = lane.queued.length - before
      this.#pending += added
      if (added !== 1) {
        this.#stats.coalesced++
        return
      }
      if (lane.inflight === undefined && lane.retryTimer === undefined && lane.queued.length === 1) {
        this.#ready.push(lane)
        this.#schedulePump()
      }
    })
  }

  /** Resolves when `id` has nothing queued or in flight. */
  idle(id: string): Promise<void> {
    const lane = this.#lanes.get(id)
    if (lane === undefined) return Promise.resolve()
    return new Promise((resolve) => {
      ;(lane.idleWaiters ??= []).push(resolve)
    })
  }

  /** Resolves when every accepted write has settled. */
  flush(): Promise<void> {
    if (this.#lanes.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.#flushWaiters.push(resolve))
  }

  /** Counters for `manager.stats()`. */
  stats(): WriteQueueStats {
    return { pendingWrites: this.#pending, ...this.#stats }
  }

  /**
   * Fold `op` into the not-yet-sent writes `queued` of one session and return the list to keep.
   * The list stays canonical: at most a whole-record set or a delete first, then at most one
   * write per key, so folding a newer write of a key always replaces the older one.
   */
  #fold(queued: Entry[], op: MutableOperation, waiters: Waiter[]): Entry[] {
    if (queued.length === 0) return [{ op, waiters, attempts: 0 }]
    if (op.type === 'set' || op.type === 'delete') {
      // A whole-record write or a delete decides the final state alone. Writes a delete
      // absorbs settle as "no live record": their data was never kept.
      const absorbed = queued.flatMap((entry) => entry.waiters)
      return [{ op, waiters: (op.type === 'delete' ? absorbed.map(asMissing) : absorbed).concat(waiters), attempts: 0 }]
    }
    const head = queued[0]!
    if (head.op.type === 'set' && op.type !== 'touch') {
      const data = { ...head.op.record.data }
      // defineProperty, not assignment: `data['__proto__'] = v` would set the prototype and drop the key.
      if (op.type === 'update') Object.defineProperty(data, op.key, { value: op.value, enumerable: true, writable: true, configurable: true })
      else delete data[op.key]
      head.op.record = { ...head.op.record, data, expiresAt: op.expiresAt }
      head.waiters.push(...waiters)
      return queued
    }
    for (const entry of queued) {
      const queuedOp = entry.op
      if (op.type === 'touch') {
        if (queuedOp.type === 'delete') continue
        if (queuedOp.type === 'set') queuedOp.record = { ...queuedOp.record, expiresAt: Math.max(queuedOp.record.expiresAt, op.expiresAt) }
        else queuedOp.expiresAt = Math.max(queuedOp.expiresAt, op.expiresAt)
        entry.waiters.push(...waiters)
        return queued
      }
      if ((queuedOp.type === 'update' || queuedOp.type === 'remove') && queuedOp.key === op.key) {
        // Same key: the later write decides. Keep the entry's place; the other keys are independent.
        entry.op = op
        entry.waiters.push(...waiters)
        return queued
      }
    }
    queued.push({ op, waiters, attempts: 0 })
    return queued
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return
    this.#pumpScheduled = true
    queueMicrotask(() => {
      this.#pumpScheduled = false
      this.#pump()
    })
  }

  #pump(): void {
    while (this.#ready.length > 0 && this.#stats.inflight < this.#concurrency) {
      if (this.#batch !== undefined) this.#sendBatch(this.#batch)
      else this.#sendOne(this.#ready.shift()!)
    }
  }

  #sendBatch(batch: (ops: readonly StorageOperation[]) => Promise<BatchOutcome[]>): void {
    const lanes: Lane[] = []
    const operations: StorageOperation[] = []
    while (this.#ready.length > 0 && operations.length < this.#maxBatchSize) {
      const lane = this.#ready.shift()!
      lane.inflight = lane.queued
      lane.queued = []
      lanes.push(lane)
      for (const entry of lane.inflight) operations.push(entry.op)
    }
    if (lanes.length === 1 && operations.length === 1) {
      // Nothing to group: the storage's single-operation path is cheaper.
      this.#call(lanes, operations, (ops) => this.#apply(ops[0]!).then((applied) => [applied]))
      return
    }
    this.#call(lanes, operations, batch)
  }

  #sendOne(lane: Lane): void {
    lane.inflight = [lane.queued.shift()!]
    this.#call([lane], [lane.inflight[0]!.op], (ops) => this.#apply(ops[0]!).then((applied) => [applied]))
  }

  #call(lanes: Lane[], operations: StorageOperation[], send: (ops: readonly StorageOperation[]) => Promise<BatchOutcome[]>): void {
    this.#stats.inflight++
    this.#stats.storageCalls++
    this.#stats.operations += operations.length
    let sent: Promise<BatchOutcome[]>
    try {
      sent = send(operations)
    } catch (err) {
      sent = Promise.reject(err)
    }
    sent.then(
      (outcomes) => this.#settle(lanes, (index) => outcomes[index] ?? new Error(`the ${this.#storage.name} storage returned no outcome for a batched write`)),
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err))
        this.#settle(lanes, () => error)
      },
    )
  }

  #apply(op: StorageOperation): Promise<boolean> {
    const storage = this.#storage
    switch (op.type) {
      case 'set':
        return storage.set(op.id, op.record).then(() => true)
      case 'update':
        return storage.update(op.id, op.key, op.value, op.expiresAt)
      case 'remove':
        return storage.remove(op.id, op.key, op.expiresAt)
      case 'delete':
        return storage.delete(op.id).then(() => true)
      case 'touch':
        return storage.touch(op.id, op.expiresAt)
    }
  }

  #settle(lanes: Lane[], outcomeAt: (index: number) => BatchOutcome): void {
    this.#stats.inflight--
    let index = 0
    for (const lane of lanes) {
      const entries = lane.inflight ?? []
      lane.inflight = undefined
      let failedAt = -1
      let failure: Error | undefined
      for (let i = 0; i < entries.length; i++, index++) {
        const outcome = outcomeAt(index)
        if (failedAt !== -1) continue
        if (outcome instanceof Error) {
          failedAt = i
          failure = outcome
          continue
        }
        this.#pending--
        for (const waiter of entries[i]!.waiters) waiter.resolve(outcome)
      }
      if (failedAt === -1) this.#afterRound(lane)
      else this.#retryOrFail(lane, entries.slice(failedAt), failure!)
    }
    this.#pump()
  }

  #afterRound(lane: Lane): void {
    if (lane.queued.length > 0) {
      this.#ready.push(lane)
      return
    }
    this.#lanes.delete(lane.id)
    if (lane.idleWaiters !== undefined) for (const resolve of lane.idleWaiters) resolve()
    if (this.#lanes.size === 0 && this.#flushWaiters.length > 0) {
      const waiters = this.#flushWaiters
      this.#flushWaiters = []
      for (const resolve of waiters) resolve()
    }
  }

  // Entries from the failed one on are resent in order (they are idempotent), ahead of newer writes.
  #retryOrFail(lane: Lane, failed: Entry[], cause: Error): void {
    const attempts = failed[0]!.attempts + 1
    if (attempts <= this.#retries) {
      this.#stats.retries++
      for (const entry of failed) entry.attempts = attempts
      // Fold the writes made meanwhile into the retried ones, so a newer write of a key still
      // lands after the older one it replaces.
      const entries = failed.length + lane.queued.length
      let queued = failed
      for (const entry of lane.queued) queued = this.#fold(queued, entry.op, entry.waiters)
      this.#pending += queued.length - entries
      lane.queued = queued
      const base = Math.min(this.#maxRetryDelay, this.#retryDelay * 2 ** (attempts - 1))
      const delay = base * (0.75 + Math.random() * 0.5)
      lane.retryTimer = setTimeout(() => {
        lane.retryTimer = undefined
        this.#ready.push(lane)
        this.#pump()
      }, delay)
      return
    }
    // Given up: this write and every later write of the session fail together, so the
    // session's cached state is dropped and rebuilt from what the storage really holds.
    const rejected = failed.concat(lane.queued)
    lane.queued = []
    this.#stats.failures += rejected.length
    this.#pending -= rejected.length
    const error = new SessionError(
      'SESSION_STORAGE_FAILED',
      `the ${this.#storage.name} storage did not acknowledge a write of a session after ${attempts} attempts: ${cause.message}`,
      { cause },
    )
    this.#afterRound(lane)
    // The manager drops its cached copy before any rejection handler runs (they run later, as
    // microtasks); a throwing hook must not leave the other writes of this round unsettled.
    for (const entry of rejected) for (const waiter of entry.waiters) waiter.reject(error)
    try {
      this.#onFailure?.(
        lane.id,
        error,
        rejected.some((entry) => entry.op.type !== 'touch'),
      )
    } catch (hookError) {
      process.emitWarning(`a session write-failure hook threw: ${hookError instanceof Error ? hookError.message : String(hookError)}`, {
        code: 'SESSION_LISTENER_ERROR',
      })
    }
  }
}

function asMissing(waiter: Waiter): Waiter {
  return { resolve: () => waiter.resolve(false), reject: (error) => waiter.reject(error) }
}
