import { MemoryStorage } from '../../storages/memory.js'
import type { BatchOutcome, JsonValue, SessionRecord, SessionRecordInput, Storage, StorageAdmin, StorageOperation, WriteConflict } from '../../src/types.js'

/** The error every injected failure rejects with, so tests can tell it from a real one. */
export class InjectedFault extends Error {
  readonly code = 'EINJECTED'
  constructor(what: string) {
    super(`injected storage fault: ${what}`)
    this.name = 'InjectedFault'
  }
}

/** Whether one operation of a write (single or batched) must fail; `attempt` counts from 1 per operation. */
export type OperationFilter = (op: StorageOperation, attempt: number) => boolean

/**
 * How the storage behaves now. Switch at any time with {@link StorageDouble.setMode} or the
 * shortcuts; calls already waiting keep the mode they started with.
 */
export type FaultMode =
  | { readonly kind: 'up' }
  /** Every call rejects. */
  | { readonly kind: 'down' }
  /** Every call waits `delayMs` before reaching the inner storage. */
  | { readonly kind: 'slow'; readonly delayMs: number }
  /** Writes whose operation matches `fail` fail (per operation, also inside a batch); the rest are applied. Reads pass. */
  | { readonly kind: 'partial'; readonly fail: OperationFilter }
  /** Calls alternate: `up` calls succeed, then `down` calls reject, and so on. */
  | { readonly kind: 'flapping'; readonly up: number; readonly down: number }

/** A storage method the double serves. */
export type Method = 'get' | 'set' | 'update' | 'remove' | 'delete' | 'touch' | 'batch' | 'length' | 'all' | 'clear' | 'cleanup'

/** One call of the data path (a read, a write or `close`), in arrival order. */
export interface Call {
  method: string
  id?: string
}

/** Options of {@link StorageDouble}. */
export interface StorageDoubleOptions {
  /** Offer `batch` when the inner storage has it. Default true. */
  batch?: boolean
  /** What {@link StorageDouble.hold} holds: every call, or only the writes. Default `'all'`. */
  hold?: 'all' | 'writes'
  /** Let held calls proceed when the double is closed. Default true. */
  releaseOnClose?: boolean
  /** The storage's name. Default `fault(<inner name>)`. */
  name?: string
}

const WRITES: ReadonlySet<Method> = new Set(['set', 'update', 'remove', 'delete', 'touch', 'batch'])

/**
 * A {@link Storage} in front of another that fails and gates on command. It fails by mode (down,
 * slow, failing part of a batch, or flapping, switchable while traffic runs) or by count (the
 * next `failWrites` writes, every read while `failReads`); it holds calls until released (to keep
 * writes pending for as long as a test needs); it answers `get` with a forged raw value; and it
 * records every call, per method and in order, so a test can prove a request cost no storage read.
 *
 * @example
 * ```ts
 * const storage = new FaultStorage(new MemoryStorage())
 * const manager = new SessionManager({ storage, writeRetries: 2, retryDelay: 1 })
 * storage.down()
 * await t.throwsAsync(session.set('a', 1), { code: 'SESSION_STORAGE_FAILED' })
 * storage.up()
 * ```
 */
export class StorageDouble<S extends Storage & StorageAdmin = Storage & StorageAdmin> implements Storage {
  readonly name: string
  /** The wrapped storage: read it directly to check what really landed. */
  readonly inner: S
  /** Present when the inner storage batches and the option allows it. */
  readonly batch?: (operations: readonly StorageOperation[]) => Promise<BatchOutcome[]>
  /** Calls received per method (including the ones that failed). */
  readonly counts: Record<Method, number> = { get: 0, set: 0, update: 0, remove: 0, delete: 0, touch: 0, batch: 0, length: 0, all: 0, clear: 0, cleanup: 0 }
  /** Reads, writes and `close`, in arrival order, with the session id where there is one. */
  readonly log: Call[] = []
  /** Calls (or batched operations) made to fail. */
  failures = 0
  /** Write operations that reached the inner storage and were applied, in order. */
  readonly applied: StorageOperation[] = []
  /** Fail this many of the next write calls (a batch counts once), whatever the mode. */
  failWrites = 0
  /** Fail every read while set. */
  failReads = false
  #mode: FaultMode = { kind: 'up' }
  #flapCount = 0
  #held: Array<() => void> | undefined
  readonly #holdWhat: 'all' | 'writes'
  readonly #releaseOnClose: boolean
  readonly #attempts = new Map<string, number>()
  readonly #forged = new Map<string, unknown>()

  constructor(inner: S, options: StorageDoubleOptions = {}) {
    this.inner = inner
    this.name = options.name ?? `fault(${inner.name})`
    this.#holdWhat = options.hold ?? 'all'
    this.#releaseOnClose = options.releaseOnClose ?? true
    if (options.batch !== false && typeof inner.batch === 'function') {
      this.batch = (operations) => this.#batch(operations)
    }
  }

  /** The current mode. */
  get mode(): FaultMode {
    return this.#mode
  }

  /** Switch behaviour now. */
  setMode(mode: FaultMode): this {
    this.#mode = mode
    this.#flapCount = 0
    return this
  }

  up(): this {
    return this.setMode({ kind: 'up' })
  }

  down(): this {
    return this.setMode({ kind: 'down' })
  }

  slow(delayMs: number): this {
    return this.setMode({ kind: 'slow', delayMs })
  }

  failOperations(fail: OperationFilter): this {
    return this.setMode({ kind: 'partial', fail })
  }

  flap(up: number, down: number): this {
    return this.setMode({ kind: 'flapping', up, down })
  }

  /** Make every call (or every write, see {@link StorageDoubleOptions.hold}) wait, in arrival order, until {@link StorageDouble.release}. */
  hold(): this {
    this.#held ??= []
    return this
  }

  /** Let held calls proceed, and stop holding. */
  release(): this {
    const held = this.#held ?? []
    this.#held = undefined
    for (const proceed of held) proceed()
    return this
  }

  /** Calls waiting in {@link StorageDouble.hold}. */
  get heldCalls(): number {
    return this.#held?.length ?? 0
  }

  /** Answer `get(id)` with `raw` (any value at all) instead of asking the inner storage. */
  forge(id: string, raw: unknown): this {
    this.#forged.set(id, raw)
    return this
  }

  /** Calls of one method made so far. */
  count(method: string): number {
    return this.log.filter((call) => call.method === method).length
  }

  /** Storage reads made so far. */
  get reads(): number {
    return this.counts.get
  }

  /** Write calls made so far (a batch counts once). */
  get writes(): number {
    const c = this.counts
    return c.set + c.update + c.remove + c.delete + c.touch + c.batch
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    await this.#enter('get', id)
    if (this.failReads) {
      this.failures++
      throw new InjectedFault('reads are failing')
    }
    if (this.#forged.has(id)) return this.#forged.get(id) as SessionRecord | undefined
    return this.inner.get(id)
  }

  set(id: string, record: SessionRecordInput): Promise<void>
  set(id: string, record: SessionRecordInput, ifVersion?: number): Promise<void | WriteConflict>
  set(id: string, record: SessionRecordInput, ifVersion?: number): Promise<void | WriteConflict> {
    return this.#write('set', { type: 'set', id, record, ifVersion }, () => this.inner.set(id, record, ifVersion))
  }

  update(id: string, key: string, value: JsonValue, expiresAt: number): Promise<boolean>
  update(id: string, key: string, value: JsonValue, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict>
  update(id: string, key: string, value: JsonValue, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict> {
    return this.#write('update', { type: 'update', id, key, value, expiresAt, ifVersion }, () => this.inner.update(id, key, value, expiresAt, ifVersion))
  }

  remove(id: string, key: string, expiresAt: number): Promise<boolean>
  remove(id: string, key: string, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict>
  remove(id: string, key: string, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict> {
    return this.#write('remove', { type: 'remove', id, key, expiresAt, ifVersion }, () => this.inner.remove(id, key, expiresAt, ifVersion))
  }

  delete(id: string): Promise<void>
  delete(id: string, ifVersion?: number): Promise<void | WriteConflict>
  delete(id: string, ifVersion?: number): Promise<void | WriteConflict> {
    return this.#write('delete', { type: 'delete', id, ifVersion }, () => this.inner.delete(id, ifVersion))
  }

  /** A read like `get`: it waits and fails as reads do. */
  async versions(ids: readonly string[]): Promise<Map<string, number>> {
    await this.#enter('get', ids[0])
    if (this.failReads) {
      this.failures++
      throw new InjectedFault('reads are failing')
    }
    const versions = new Map<string, number>()
    for (const id of ids) {
      const record = this.#forged.has(id) ? (this.#forged.get(id) as SessionRecord | undefined) : await this.inner.get(id)
      if (record !== undefined) versions.set(id, record.version)
    }
    return versions
  }

  touch(id: string, expiresAt: number): Promise<boolean> {
    return this.#write('touch', { type: 'touch', id, expiresAt }, () => this.inner.touch(id, expiresAt))
  }

  async length(): Promise<number> {
    await this.#enter('length')
    return this.inner.length()
  }

  async *all(): AsyncIterable<[string, SessionRecord]> {
    await this.#enter('all')
    yield* this.inner.all()
  }

  async clear(): Promise<void> {
    await this.#enter('clear')
    return this.inner.clear()
  }

  async cleanup(now?: number): Promise<number> {
    await this.#enter('cleanup')
    return this.inner.cleanup(now)
  }

  /** Closes the inner storage; never fails, whatever the mode. */
  close(): Promise<void> {
    this.log.push({ method: 'close' })
    if (this.#releaseOnClose) this.release()
    return this.inner.close()
  }

  async #write<T>(method: Method, op: StorageOperation, apply: () => Promise<T>): Promise<T> {
    await this.#enter(method, op.id)
    this.#countedFailure(method)
    if (this.#operationFails(op)) throw new InjectedFault(`${op.type} of one session failed`)
    const result = await apply()
    this.applied.push(op)
    return result
  }

  async #batch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    await this.#enter('batch')
    this.#countedFailure('batch')
    const outcomes: BatchOutcome[] = new Array<BatchOutcome>(operations.length)
    const passing: StorageOperation[] = []
    const positions: number[] = []
    operations.forEach((op, index) => {
      if (this.#operationFails(op)) {
        outcomes[index] = new InjectedFault(`${op.type} inside a batch failed`)
      } else {
        passing.push(op)
        positions.push(index)
      }
    })
    if (passing.length > 0) {
      const applied = await this.inner.batch!(passing)
      applied.forEach((outcome, i) => {
        outcomes[positions[i]!] = outcome
        if (!(outcome instanceof Error)) this.applied.push(passing[i]!)
      })
    }
    return outcomes
  }

  // Fails the whole write call while `failWrites` counts down.
  #countedFailure(method: Method): void {
    if (this.failWrites > 0) {
      this.failWrites--
      this.failures++
      throw new InjectedFault(`${method} failed`)
    }
  }

  #operationFails(op: StorageOperation): boolean {
    const mode = this.#mode
    if (mode.kind !== 'partial') return false
    // Retries resend equal operations (possibly coalesced into new objects): count by what they touch.
    const name = `${op.type}\u0000${op.id}\u0000${'key' in op ? op.key : ''}`
    const attempt = (this.#attempts.get(name) ?? 0) + 1
    this.#attempts.set(name, attempt)
    const fails = mode.fail(op, attempt)
    if (fails) this.failures++
    return fails
  }

  // Records the call, waits while held or slow, and fails it when the mode says so.
  async #enter(method: Method, id?: string): Promise<void> {
    this.counts[method]++
    if (method === 'get' || WRITES.has(method)) this.log.push(id === undefined ? { method } : { method, id })
    const holds = this.#holdWhat === 'all' || WRITES.has(method)
    if (holds && this.#held !== undefined) await new Promise<void>((resolve) => this.#held!.push(resolve))
    // The mode in force when the call proceeds: `hold(); …; down(); release()` fails the held calls.
    const mode = this.#mode
    if (mode.kind === 'slow') await new Promise((resolve) => setTimeout(resolve, mode.delayMs))
    if (mode.kind === 'down') {
      this.failures++
      throw new InjectedFault(`storage is down (${method})`)
    }
    if (mode.kind === 'flapping') {
      const position = this.#flapCount++ % (mode.up + mode.down)
      if (position >= mode.up) {
        this.failures++
        throw new InjectedFault(`storage is flapping (${method})`)
      }
    }
  }
}

/**
 * The double in front of any storage, holding every call while held: the name the fault,
 * race and hostile-input tests use. `calls` counts per method.
 */
export class FaultStorage<S extends Storage & StorageAdmin = Storage & StorageAdmin> extends StorageDouble<S> {
  /** Calls received per method (including the ones that failed). */
  get calls(): Record<Method, number> {
    return this.counts
  }
}

/**
 * The double in front of a fresh MemoryStorage (unless given one), holding only writes while held
 * and keeping them held through `close`: the name the core tests use. `calls` lists the reads,
 * writes and `close` in order.
 */
export class GatedStorage extends StorageDouble<MemoryStorage> {
  constructor(inner = new MemoryStorage()) {
    super(inner, { name: 'gated', hold: 'writes', releaseOnClose: false })
  }

  /** Reads, writes and `close`, in arrival order. */
  get calls(): Call[] {
    return this.log
  }

  /** Writes currently held. */
  get heldCount(): number {
    return this.heldCalls
  }
}
