import { fold, newEntry, rebasePrincipal, rederive, type Derive, type Entry, type MutableOperation, type Waiter } from './coalesce.js'
import { SessionError, storageUnavailable } from './errors.js'
import type { BatchOutcome, SessionData, SessionRecord, SessionRecordInput, Storage, StorageOperation, WriteConflict } from './types.js'
import { sameJson } from './values.js'

/** A settled promise whose `then` schedules a microtask. */
const RESOLVED = Promise.resolve()

export type { Derive } from './coalesce.js'

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
  /**
   * The version of the stored record that the next write of `id` applies to (0: there is none
   * yet), asked when `id` gets its first pending write; `undefined` writes unconditionally.
   */
  versionOf?: (id: string) => number | undefined
  /** Data writes of `id` were applied: the record is now at `version` (called once per round). */
  onVersion?: (id: string, version: number) => void
  /**
   * A conditional write of `id` met a newer version: the queue read the record again and rebased
   * the pending writes on it. `data` is the fresh record's data with those writes applied: what
   * the cache should show from now on.
   */
  onRebase?: (id: string, record: SessionRecord, data: SessionData) => void
  /**
   * The principal the rebased data of a session should be indexed under (`{ principal }`), or
   * `undefined` when sessions are not indexed (or the data gives none that can be): after a
   * rebase, the last pending key write carries it when the fresh record and the pending writes
   * would leave another one (another process changed it, or an update function derived another
   * value).
   */
  principalOf?: (data: SessionData) => { readonly principal: string | undefined } | undefined
  /** Rebases of one write before it rejects with `SESSION_CONFLICT`. Default 8. */
  maxConflicts?: number
}

interface Lane {
  readonly id: string
  queued: Entry[]
  inflight: Entry[] | undefined
  retryTimer: NodeJS.Timeout | undefined
  /** The record is being read again after a conflict. */
  reloading: boolean
  /** The stored version the next write applies to; `undefined`: unknown, writes are unconditional. */
  version: number | undefined
  idleWaiters: Array<() => void> | undefined
  /** Something is queued, in flight, waiting for a retry or reloading; `false` for a lane kept idle for reuse. */
  busy: boolean
}

/**
 * Idle lanes kept for reuse before they are swept out of the lane map. Deleting the last
 * entries of a Map makes V8 shrink its table, and the next write grows it again: with one lane
 * created and deleted per write that was about 0.5 µs of a 3 µs in-process write cycle.
 */
const MAX_IDLE_LANES = 1024

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
  /** Writes that met a newer version written elsewhere and were rebased on it. */
  conflicts: number
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
  readonly #versionOf: ((id: string) => number | undefined) | undefined
  readonly #onVersion: ((id: string, version: number) => void) | undefined
  readonly #onRebase: ((id: string, record: SessionRecord, data: SessionData) => void) | undefined
  readonly #principalOf: WriteQueueOptions['principalOf']
  readonly #maxConflicts: number
  /** The lane of every session with writes on the way, and of up to {@link MAX_IDLE_LANES} without. */
  readonly #lanes = new Map<string, Lane>()
  /** Lanes that went idle since the last sweep (a lane reused meanwhile may be listed twice). */
  #idleLanes: Lane[] = []
  /** Lanes that are busy. */
  #busy = 0
  #ready: Lane[] = []
  #pumpScheduled = false
  #pending = 0
  #flushWaiters: Array<() => void> = []
  readonly #stats = { inflight: 0, storageCalls: 0, operations: 0, coalesced: 0, retries: 0, failures: 0, conflicts: 0 }

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
    this.#versionOf = options.versionOf
    this.#onVersion = options.onVersion
    this.#onRebase = options.onRebase
    this.#principalOf = options.principalOf
    this.#maxConflicts = options.maxConflicts ?? 8
  }

  /** Writes accepted and not yet settled. */
  get pending(): number {
    return this.#pending
  }

  /** Whether `id` has writes queued or in flight. */
  has(id: string): boolean {
    return this.#lanes.get(id)?.busy === true
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
   * record the storage does not have; rejects with `SESSION_STORAGE_FAILED` after the retries,
   * or `SESSION_CONFLICT` when it kept meeting newer versions. `derive`, for an update, is how
   * its value was computed from the key's previous one: on a conflict it is run again on the
   * fresh value.
   */
  enqueue(operation: StorageOperation, derive?: Derive): Promise<boolean | WriteConflict> {
    return new Promise<boolean | WriteConflict>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject }
      const op = ownCopy(operation)
      let lane = this.#lanes.get(op.id)
      if (lane === undefined) {
        lane = { id: op.id, queued: [], inflight: undefined, retryTimer: undefined, reloading: false, version: undefined, idleWaiters: undefined, busy: false }
        this.#lanes.set(op.id, lane)
      }
      if (!lane.busy) {
        // The version is the cache's when a round starts: it may have moved while the lane was idle.
        lane.version = this.#versionOf?.(op.id)
        lane.busy = true
        this.#busy++
      }
      const before = lane.queued.length
      lane.queued = fold(lane.queued, newEntry(op, [waiter], op.type === 'update' ? derive : undefined))
      const added = lane.queued.length - before
      this.#pending += added
      if (added !== 1) {
        this.#stats.coalesced++
        return
      }
      if (lane.inflight === undefined && lane.retryTimer === undefined && !lane.reloading && lane.queued.length === 1) {
        this.#ready.push(lane)
        this.#schedulePump()
      }
    })
  }

  /** Resolves when `id` has nothing queued or in flight. */
  idle(id: string): Promise<void> {
    const lane = this.#lanes.get(id)
    if (lane === undefined || !lane.busy) return Promise.resolve()
    return new Promise((resolve) => {
      ;(lane.idleWaiters ??= []).push(resolve)
    })
  }

  /** Resolves when every accepted write has settled. */
  flush(): Promise<void> {
    if (this.#busy === 0) return Promise.resolve()
    return new Promise((resolve) => this.#flushWaiters.push(resolve))
  }

  /** Counters for `manager.stats()`. */
  stats(): WriteQueueStats {
    return { pendingWrites: this.#pending, ...this.#stats }
  }

  #afterRound(lane: Lane): void {
    if (lane.queued.length > 0) {
      this.#ready.push(lane)
      return
    }
    lane.busy = false
    this.#busy--
    const idleWaiters = lane.idleWaiters
    lane.idleWaiters = undefined
    this.#idleLanes.push(lane)
    if (this.#idleLanes.length > MAX_IDLE_LANES) this.#sweepIdleLanes()
    if (idleWaiters !== undefined) for (const resolve of idleWaiters) resolve()
    if (this.#busy === 0 && this.#flushWaiters.length > 0) {
      const waiters = this.#flushWaiters
      this.#flushWaiters = []
      for (const resolve of waiters) resolve()
    }
  }

  /** Drop the lanes that are still idle from the lane map. */
  #sweepIdleLanes(): void {
    for (const lane of this.#idleLanes) if (!lane.busy && this.#lanes.get(lane.id) === lane) this.#lanes.delete(lane.id)
    this.#idleLanes = []
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return
    this.#pumpScheduled = true
    // A promise job rather than queueMicrotask, which builds an AsyncResource on every call.
    void RESOLVED.then(() => {
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
      this.#stamp(lane, lane.inflight, operations)
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
    const operations: StorageOperation[] = []
    this.#stamp(lane, lane.inflight, operations)
    this.#call([lane], operations, (ops) => this.#apply(ops[0]!).then((applied) => [applied]))
  }

  /**
   * The operations to send for `entries` of `lane`: each data write conditional on the version
   * the one before it leaves (the lane's version, then one more per write); touches
   * unconditional, and deletes too unless their caller gave an `ifVersion`.
   */
  #stamp(lane: Lane, entries: Entry[], operations: StorageOperation[]): void {
    let version = lane.version
    for (const entry of entries) {
      const op = entry.op
      if (version === undefined || op.type === 'touch' || op.type === 'delete') {
        entry.sentVersion = undefined
        operations.push(op)
        if (op.type === 'delete' && version !== undefined) version = 0
        continue
      }
      // The entry's operation is the queue's own copy (see enqueue): stamped in place, no copy per send.
      entry.sentVersion = version
      op.ifVersion = version
      operations.push(op)
      version++
    }
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

  #apply(op: StorageOperation): Promise<BatchOutcome> {
    const storage = this.#storage
    switch (op.type) {
      case 'set':
        return storage.set(op.id, op.record, op.ifVersion).then((outcome) => outcome ?? true)
      case 'update':
        if (op.principal !== undefined) return storage.update(op.id, op.key, op.value, op.expiresAt, op.ifVersion, op.principal)
        return storage.update(op.id, op.key, op.value, op.expiresAt, op.ifVersion)
      case 'remove':
        if (op.principal !== undefined) return storage.remove(op.id, op.key, op.expiresAt, op.ifVersion, op.principal)
        return storage.remove(op.id, op.key, op.expiresAt, op.ifVersion)
      case 'delete':
        return storage.delete(op.id, op.ifVersion).then((outcome) => outcome ?? true)
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
      const versionBefore = lane.version
      let stoppedAt = -1
      let failure: Error | undefined
      for (let i = 0; i < entries.length; i++, index++) {
        const outcome = outcomeAt(index)
        if (stoppedAt !== -1) continue
        const entry = entries[i]!
        if (outcome === 'conflict' && entry.op.type === 'delete') {
          // A delete its caller made conditional: the caller decides what a conflict means.
          this.#pending--
          for (const waiter of entry.waiters) waiter.resolve(outcome)
          continue
        }
        if (outcome instanceof Error || outcome === 'conflict') {
          stoppedAt = i
          if (outcome !== 'conflict') failure = outcome
          continue
        }
        if (outcome && lane.version !== undefined) {
          if (entry.sentVersion !== undefined) lane.version = entry.sentVersion + 1
          else if (entry.op.type === 'delete') lane.version = 0
        }
        this.#pending--
        for (const waiter of entry.waiters) waiter.resolve(outcome)
      }
      if (lane.version !== undefined && lane.version !== versionBefore && lane.version > 0) this.#hook(() => this.#onVersion?.(lane.id, lane.version!))
      if (stoppedAt === -1) this.#afterRound(lane)
      else if (failure !== undefined) this.#retryOrFail(lane, entries.slice(stoppedAt), failure)
      else this.#rebase(lane, entries.slice(stoppedAt))
    }
    this.#pump()
  }

  /**
   * `conflicted` (and every later write of the lane) met a version written elsewhere: read the
   * record again, run derived values again on it, tell the cache what it now holds, and resend
   * against the fresh version. A whole-record set cannot be rebased, nor a write that met too
   * many conflicts: those reject with `SESSION_CONFLICT`.
   */
  #rebase(lane: Lane, conflicted: Entry[]): void {
    this.#stats.conflicts++
    const head = conflicted[0]!
    if (head.op.type === 'set' && head.sentVersion === 0 && head.attempts > 0) {
      this.#confirmCreated(lane, conflicted, head.op.record)
      return
    }
    if (head.op.type === 'set' || head.conflicts >= this.#maxConflicts) {
      const reason =
        head.op.type === 'set' ? 'a new record could not be stored: the id is taken' : `it met a newer version written elsewhere ${head.conflicts + 1} times`
      this.#giveUp(lane, conflicted, new SessionError('SESSION_CONFLICT', `a write of a session to the ${this.#storage.name} storage was given up: ${reason}`))
      return
    }
    this.#reread(lane, conflicted, (record) => {
      for (const entry of conflicted) entry.conflicts++
      const queued = this.#withQueued(lane, conflicted)
      lane.version = record?.version ?? 0
      if (record === undefined) lane.queued = queued
      else {
        const rebased = rederive(queued, record)
        for (const [entry, error] of rebased.refused) {
          this.#pending--
          for (const waiter of entry.waiters) waiter.reject(error)
        }
        if (rebased.data !== undefined) {
          const indexed = this.#principalOf?.(rebased.data)
          if (indexed !== undefined) rebasePrincipal(rebased.kept, record.principal, indexed.principal)
          this.#hook(() => this.#onRebase?.(lane.id, record, rebased.data!))
        }
        lane.queued = rebased.kept
      }
      this.#resume(lane)
    })
  }

  /**
   * A new record's write (`conflicted[0]`, conditional on there being none) conflicted on a retry:
   * an earlier attempt may have been applied with its acknowledgement lost (a timeout, a
   * connection reset after the commit). The id is random and nobody else has it yet, so a record
   * holding exactly what was written, created at the same time, is that attempt: the write
   * landed, and the later writes go on from its version. Any other record under the id gives up
   * with `SESSION_CONFLICT`; none at all (it expired meanwhile) sends the write again.
   */
  #confirmCreated(lane: Lane, conflicted: Entry[], written: SessionRecordInput): void {
    this.#reread(lane, conflicted, (record) => {
      let rest = conflicted
      if (record !== undefined) {
        if (record.createdAt !== written.createdAt || !sameJson(record.data, written.data)) {
          const error = new SessionError(
            'SESSION_CONFLICT',
            `a write of a session to the ${this.#storage.name} storage was given up: a new record could not be stored: the id is taken`,
          )
          this.#giveUp(lane, conflicted, error)
          this.#pump()
          return
        }
        const head = conflicted[0]!
        this.#pending--
        for (const waiter of head.waiters) waiter.resolve(true)
        rest = conflicted.slice(1)
        if (record.version !== undefined) {
          lane.version = record.version
          this.#hook(() => this.#onVersion?.(lane.id, record.version))
        }
      } else lane.version = 0
      lane.queued = this.#withQueued(lane, rest)
      this.#resume(lane)
    })
  }

  /**
   * Read the record of `lane` again (after `conflicted` met a conflict) and hand it to `then`;
   * the lane sends nothing meanwhile. A failed read retries `conflicted` as a failed write would.
   */
  #reread(lane: Lane, conflicted: Entry[], then: (record: SessionRecord | undefined) => void): void {
    lane.reloading = true
    let reading: Promise<SessionRecord | undefined>
    try {
      reading = this.#storage.get(lane.id)
    } catch (err) {
      reading = Promise.reject(err)
    }
    reading.then(
      (record) => {
        lane.reloading = false
        then(record)
      },
      (err: unknown) => {
        lane.reloading = false
        this.#retryOrFail(lane, conflicted, err instanceof Error ? err : new Error(String(err)))
      },
    )
  }

  /** `entries` followed by the lane's queued writes, coalesced, to be sent again in that order (the pending count follows the coalescing). */
  #withQueued(lane: Lane, entries: Entry[]): Entry[] {
    let queued: Entry[] = []
    const count = entries.length + lane.queued.length
    for (const entry of entries.concat(lane.queued)) queued = fold(queued, entry)
    this.#pending += queued.length - count
    return queued
  }

  /** Send the lane's queued writes, or let it go idle when there are none. */
  #resume(lane: Lane): void {
    if (lane.queued.length === 0) this.#afterRound(lane)
    else this.#ready.push(lane)
    this.#pump()
  }

  // Entries from the failed one on are resent in order (they are idempotent), ahead of newer writes.
  #retryOrFail(lane: Lane, failed: Entry[], cause: Error): void {
    const attempts = failed[0]!.attempts + 1
    if (attempts > this.#retries) {
      const error = storageUnavailable('SESSION_STORAGE_FAILED', `a write was not acknowledged after ${attempts} attempt${attempts === 1 ? '' : 's'}`, cause)
      this.#giveUp(lane, failed, error)
      return
    }
    this.#stats.retries++
    for (const entry of failed) entry.attempts = attempts
    // Fold the writes made meanwhile into the retried ones, so a newer write of a key still
    // lands after the older one it replaces.
    const entries = failed.length + lane.queued.length
    let queued = failed
    for (const entry of lane.queued) queued = fold(queued, entry)
    this.#pending += queued.length - entries
    lane.queued = queued
    const base = Math.min(this.#maxRetryDelay, this.#retryDelay * 2 ** (attempts - 1))
    const delay = base * (0.75 + Math.random() * 0.5)
    lane.retryTimer = setTimeout(() => {
      lane.retryTimer = undefined
      this.#ready.push(lane)
      this.#pump()
    }, delay)
  }

  // Given up: this write and every later write of the session fail together, so the session's
  // cached state is dropped and rebuilt from what the storage really holds.
  #giveUp(lane: Lane, failed: Entry[], error: SessionError): void {
    const rejected = failed.concat(lane.queued)
    lane.queued = []
    this.#stats.failures += rejected.length
    this.#pending -= rejected.length
    this.#afterRound(lane)
    // The manager drops its cached copy before any rejection handler runs (they run later, as
    // microtasks); a throwing hook must not leave the other writes of this round unsettled.
    for (const entry of rejected) for (const waiter of entry.waiters) waiter.reject(error)
    const dataWritten = rejected.some((entry) => entry.op.type !== 'touch')
    this.#hook(() => this.#onFailure?.(lane.id, error, dataWritten))
  }

  /** Run a hook of the manager's; one that throws is reported as a warning and never breaks the queue. */
  #hook(call: () => void): void {
    try {
      call()
    } catch (hookError) {
      process.emitWarning(`a session write-queue hook threw: ${hookError instanceof Error ? hookError.message : String(hookError)}`, {
        code: 'SESSION_LISTENER_ERROR',
      })
    }
  }
}

/**
 * The queue's own copy of `operation`, which it stamps and folds in place: one literal per type
 * with `ifVersion` from the start, so setting it on send keeps the object's shape (a spread copy
 * would gain the property then, a shape change per send).
 */
function ownCopy(operation: StorageOperation): MutableOperation {
  switch (operation.type) {
    case 'set':
      return { type: 'set', id: operation.id, record: operation.record, ifVersion: operation.ifVersion }
    case 'update':
      return {
        type: 'update',
        id: operation.id,
        key: operation.key,
        value: operation.value,
        expiresAt: operation.expiresAt,
        ifVersion: operation.ifVersion,
        principal: operation.principal,
      }
    case 'remove':
      return {
        type: 'remove',
        id: operation.id,
        key: operation.key,
        expiresAt: operation.expiresAt,
        ifVersion: operation.ifVersion,
        principal: operation.principal,
      }
    case 'delete':
      return { type: 'delete', id: operation.id, ifVersion: operation.ifVersion }
    case 'touch':
      return { type: 'touch', id: operation.id, expiresAt: operation.expiresAt }
  }
}
