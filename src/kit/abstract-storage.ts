import type { JsonValue } from '../types.js'
import { Batch } from './batch.js'
import type {
  BatchOutcome,
  PrincipalChange,
  PrincipalSession,
  SessionRecord,
  SessionRecordInput,
  Storage,
  StorageAdmin,
  StorageCapabilities,
  StorageOperation,
  WriteConflict,
} from './contract.js'
import { hasCode, invalidOperation, messageOf, storageClosed, storageError, storageFailure, unsupported } from './errors.js'
import { isLive } from './liveness.js'
import { clockOption, optionsObject, stringOption } from './options.js'
import { checkOperation, isPrincipal, normalizeOperation } from './record.js'

/** What {@link AbstractStorage.open} does, in its error message. */
const OPEN = 'be opened'

/** Reads in flight at once when {@link AbstractStorage.versions} reads one id at a time. */
const VERSION_READS = 16

/** Options every storage built on {@link AbstractStorage} accepts. */
export interface AbstractStorageOptions {
  /** Clock in epoch ms: what "now" is for liveness and cleanup. Default `Date.now`. */
  now?: (() => number) | undefined
}

/**
 * The base of a storage, in the manner of abstract-level: its public methods do what every
 * storage shares and call a few protected hooks that do the backend's work.
 *
 * The public methods refuse calls once the storage is closed (`SESSION_CLOSED`), wait for
 * {@link AbstractStorage._open}, validate operations (`SESSION_INVALID_OPERATION`), read the
 * clock once per call and hand it to the hook, never return a record that is not live, turn
 * every backend failure into `SESSION_STORAGE_ERROR` with the backend's error as `cause`, and
 * wait for calls in flight before {@link AbstractStorage._close}. A single write runs as a
 * one-operation batch unless the backend has a cheaper path ({@link AbstractStorage._apply}).
 *
 * Conditional writes (`ifVersion`) follow one rule, `decideWrite`: a backend that reads
 * before it writes decides with it (under its lock, if it has concurrent callers); one with
 * conditional statements (MySQL's `WHERE version = ?`, DynamoDB's `ConditionExpression`)
 * classifies a statement that changed nothing with `refusedWrite`. The version a data
 * write gives is `nextVersion`; a touch keeps it. {@link AbstractStorage.versions} reads
 * through `_get`, one id at a time, unless the backend has a cheaper `_versions`.
 *
 * A storage never retries: a failed operation rejects (or, in a batch, gets its error as its
 * outcome, with the later operations of its session) and the manager's write queue retries
 * whole operations with its backoff. The one exception is finishing a single call that the
 * backend protocol returns unfinished (DynamoDB's `UnprocessedItems`), bounded, within that call.
 *
 * A backend overrides `_get`, one of `_write` (a batch) or `_apply` (one operation), and for
 * the operators' side `_all`, `_clear`, `_cleanup` (and `_length` when it can count faster than
 * listing); `_versions` when it can read many versions in one call (a shared storage should).
 * It offers `batch` by declaring it in {@link AbstractStorage.capabilities} and defining
 * `batch(operations) { return this.applyBatch(operations) }`. A complete backend is in
 * docs/implementing-a-storage.md.
 *
 * @example
 * ```ts
 * class MapStorage extends AbstractStorage {
 *   readonly capabilities = { batch: false, admin: true, shared: false }
 *   readonly #records = new Map<string, SessionRecord>()
 *   constructor(options?: AbstractStorageOptions) {
 *     super('map', options, 'MapStorage')
 *   }
 *   protected override _get(id: string) {
 *     return this.#records.get(id)
 *   }
 *   protected override _apply(op: StorageOperation, now: number) {
 *     // …the backend's work for one operation
 *   }
 * }
 * ```
 */
export abstract class AbstractStorage implements Storage, StorageAdmin {
  /** A short name used in error messages, e.g. `"level"`. */
  readonly name: string
  /** What this storage offers; the contract suite checks it for exactly this. */
  abstract readonly capabilities: StorageCapabilities
  readonly #now: () => number
  #closing: Promise<void> | undefined
  #inflight = 0
  #drained: (() => void) | undefined

  /**
   * @param name The storage's name in error messages (checked: a non-empty string).
   * @param options The storage's options; the base reads `now`.
   * @param owner The class name that option errors name, e.g. `"LevelStorage"`.
   */
  protected constructor(name: string, options: AbstractStorageOptions | undefined, owner: string) {
    const checked = optionsObject(options, owner) as AbstractStorageOptions
    this.name = stringOption(name ?? null, owner, 'name', '')
    this.#now = clockOption(checked.now, owner)
    const base = AbstractStorage.prototype
    if (this._write === base._write && this._apply === base._apply) throw new TypeError(`${owner} must override _write or _apply`)
  }

  /** The storage's clock (the `now` option). */
  protected now(): number {
    return this.#now()
  }

  /** Whether `close()` was called. */
  protected get closed(): boolean {
    return this.#closing !== undefined
  }

  /** The live record of `id`, or `undefined` when there is none (missing, expired, or an id that is not a string). */
  get(id: string): Promise<SessionRecord | undefined> {
    return this.#call('read a session', async (now) => {
      if (typeof id !== 'string') return undefined
      const record = await this._get(id, now)
      return record !== undefined && isLive(record, now) ? record : undefined
    })
  }

  /** Create or replace the whole record of `id`; its version becomes the live record's plus one (1 when there is none). */
  set(id: string, record: SessionRecordInput): Promise<void>
  /** Create or replace the whole record of `id` if the live record is at `ifVersion` (0: none); `'conflict'` otherwise, nothing written. */
  set(id: string, record: SessionRecordInput, ifVersion?: number): Promise<void | WriteConflict>
  async set(id: string, record: SessionRecordInput, ifVersion?: number): Promise<void | WriteConflict> {
    if ((await this.#single(ifVersion === undefined ? { type: 'set', id, record } : { type: 'set', id, record, ifVersion })) === 'conflict') return 'conflict'
  }

  /** Set one key of a live record and move its idle deadline. `false` when there is no live record. */
  update(id: string, key: string, value: JsonValue, expiresAt: number): Promise<boolean>
  /** Set one key of a live record at `ifVersion` and move its idle deadline: `false` when there is no live record, `'conflict'` when it is at another version. */
  update(id: string, key: string, value: JsonValue, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict>
  /** {@link AbstractStorage.update} that also changes the record's principal (`null`: none) in the same write. */
  update(
    id: string,
    key: string,
    value: JsonValue,
    expiresAt: number,
    ifVersion: number | undefined,
    principal: PrincipalChange,
  ): Promise<boolean | WriteConflict>
  update(id: string, key: string, value: JsonValue, expiresAt: number, ifVersion?: number, principal?: PrincipalChange): Promise<boolean | WriteConflict> {
    return this.#single(withOptional({ type: 'update', id, key, value, expiresAt }, ifVersion, principal))
  }

  /** Remove one key of a live record and move its idle deadline. `false` when there is no live record. */
  remove(id: string, key: string, expiresAt: number): Promise<boolean>
  /** Remove one key of a live record at `ifVersion` and move its idle deadline: `false` when there is no live record, `'conflict'` when it is at another version. */
  remove(id: string, key: string, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict>
  /** {@link AbstractStorage.remove} that also changes the record's principal (`null`: none) in the same write. */
  remove(id: string, key: string, expiresAt: number, ifVersion: number | undefined, principal: PrincipalChange): Promise<boolean | WriteConflict>
  remove(id: string, key: string, expiresAt: number, ifVersion?: number, principal?: PrincipalChange): Promise<boolean | WriteConflict> {
    return this.#single(withOptional({ type: 'remove', id, key, expiresAt }, ifVersion, principal))
  }

  /** Delete the record of `id`; deleting a missing record succeeds. */
  delete(id: string): Promise<void>
  /** Delete the record of `id` unless a live record is at another version than `ifVersion` (then `'conflict'`, nothing deleted). */
  delete(id: string, ifVersion?: number): Promise<void | WriteConflict>
  async delete(id: string, ifVersion?: number): Promise<void | WriteConflict> {
    if ((await this.#single(ifVersion === undefined ? { type: 'delete', id } : { type: 'delete', id, ifVersion })) === 'conflict') return 'conflict'
  }

  /** Move the idle deadline of a live record without rewriting its data or changing its version. `false` when there is none. */
  async touch(id: string, expiresAt: number): Promise<boolean> {
    return (await this.#single({ type: 'touch', id, expiresAt })) === true
  }

  /**
   * The versions of the live records among `ids` (absent and expired ids are left out), from
   * {@link AbstractStorage._versions}. Ids that are not strings are no sessions; an id given
   * twice is read once.
   */
  versions(ids: readonly string[]): Promise<Map<string, number>> {
    return this.#call('read session versions', (now) => {
      const given: unknown = ids
      if (!Array.isArray(given)) throw invalidOperation(this.name, 'versions() takes an array of session ids')
      const unique = [...new Set(ids.filter((id) => typeof id === 'string'))]
      return unique.length === 0 ? new Map<string, number>() : this._versions(unique, now)
    })
  }

  /**
   * The live sessions of `principal`, oldest first, from {@link AbstractStorage._findByPrincipal}
   * (the backend's index). Rejects with `SESSION_INVALID_OPERATION` for a principal that is not
   * text of 1 to 255 characters, and `SESSION_INVALID_STATE` on a storage that does not index
   * principals.
   */
  findByPrincipal(principal: string): Promise<PrincipalSession[]> {
    return this.#call('find the sessions of a principal', async (now) => {
      if (!isPrincipal(principal)) throw invalidOperation(this.name, 'findByPrincipal() takes a principal of 1 to 255 characters')
      const found = await this._findByPrincipal(principal, now)
      return found.filter((session) => isLive(session, now)).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
    })
  }

  /** Number of live records. */
  length(): Promise<number> {
    return this.#call('count sessions', (now) => this._length(now))
  }

  /** Every live record with its id. */
  async *all(): AsyncIterable<[string, SessionRecord]> {
    if (this.closed) throw storageClosed(this.name)
    await this._open()
    if (this.closed) throw storageClosed(this.name)
    const now = this.#now()
    try {
      for await (const entry of await this._all(now)) if (isLive(entry[1], now)) yield entry
    } catch (err) {
      throw storageError(this.name, 'list sessions', err)
    }
  }

  /** Delete every record. */
  clear(): Promise<void> {
    return this.#call('clear sessions', () => this._clear())
  }

  /** Delete records expired at `now` (default: the storage's clock), in bounded batches; resolves to how many. */
  cleanup(now?: number): Promise<number> {
    return this.#call('clean up expired sessions', (clock) => {
      if (now !== undefined && !Number.isFinite(now)) throw invalidOperation(this.name, 'cleanup(now) takes a finite number of epoch milliseconds')
      return this._cleanup(now ?? clock)
    })
  }

  /**
   * Open the backend ({@link AbstractStorage._open}) and check that it can keep sessions
   * ({@link AbstractStorage._check}: a table that exists, a connection that answers). Rejects
   * with `SESSION_STORAGE_ERROR` (the backend's error as `cause`), or `SESSION_CLOSED` once closed.
   * Optional, for start-up checks (`manager.ready()` calls it): every other method opens the
   * storage too. A failed open can be tried again where the backend allows it.
   *
   * @example
   * ```ts
   * await storage.open()
   * ```
   */
  async open(): Promise<void> {
    try {
      await this.#call(OPEN, () => this._check())
    } catch (err) {
      // The backend's own words say what failed (`connect ECONNREFUSED 127.0.0.1:3307`): open()
      // is called at start-up, by the operator's code, and a request never sees this message.
      if (err instanceof Error && err.message === `the ${this.name} storage could not ${OPEN}`) {
        throw storageFailure(`${err.message}: ${messageOf(err.cause)}`, err.cause)
      }
      throw err
    }
  }

  /** Wait for the calls in flight, then release the backend ({@link AbstractStorage._close}). Idempotent; later calls reject with `SESSION_CLOSED`. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#inflight > 0) await new Promise<void>((resolve) => (this.#drained = resolve))
      await this._close()
    })()
    return this.#closing
  }

  /**
   * Apply several operations and report one outcome per operation: what a backend's
   * `batch(operations)` returns. An invalid operation gets its error as its outcome, and so
   * do the later operations of its session; a failure of the whole backend call rejects.
   */
  protected applyBatch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    return this.#call('write sessions', async (now) => {
      const given: unknown = operations
      if (!Array.isArray(given)) throw invalidOperation(this.name, 'batch() takes an array of operations')
      const problems = operations.map((op) => checkOperation(this.name, op))
      const batch = new Batch(operations.map((op, index) => (problems[index] === undefined ? normalizeOperation(op) : op)))
      problems.forEach((problem, index) => {
        if (problem !== undefined) batch.fail(index, problem)
      })
      if (batch.pendingCount > 0) await this._write(batch, now)
      return batch.outcomes
    })
  }

  /**
   * Resolves when the backend is ready; every call waits for it. Default: ready at once. A
   * rejection is every call's rejection (it should be a `storageFailure` saying why).
   */
  protected _open(): Promise<void> | void {}

  /**
   * What {@link AbstractStorage.open} checks once the backend is open: that the backend answers
   * and holds what the storage needs (MySQL: the table, created when the storage creates it;
   * DynamoDB: the table). Default: nothing to check.
   */
  protected _check(): Promise<void> | void {}

  /** The record of `id` as stored (the base drops it if it is not live), or `undefined`. Unusable → throw `readRecord`'s error. */
  protected abstract _get(id: string, now: number): Promise<SessionRecord | undefined> | SessionRecord | undefined

  /**
   * Apply the pending operations of `batch` (well-formed, in array order per session) and
   * settle each with `batch.done` or `batch.fail`. Reject only when the whole call failed.
   * Default: each operation through {@link AbstractStorage._apply}, one at a time.
   */
  protected _write(batch: Batch, now: number): Promise<void> | void {
    return batch.applyEach((op) => this._apply(op, now))
  }

  /**
   * Apply one well-formed operation: whether it applied (`false`: no live record for an
   * update, remove or touch), or `'conflict'` when its `ifVersion` did not match and nothing was
   * written (see `decideWrite`). Default: a one-operation {@link AbstractStorage._write}.
   */
  protected _apply(op: StorageOperation, now: number): Promise<boolean | WriteConflict> | boolean | WriteConflict {
    return this.#applyAsBatch(op, now)
  }

  async #applyAsBatch(op: StorageOperation, now: number): Promise<boolean | WriteConflict> {
    const batch = new Batch([op])
    await this._write(batch, now)
    const outcome = batch.outcomes[0]!
    if (outcome instanceof Error) throw outcome
    return outcome
  }

  /**
   * The versions of the live records among `ids` (distinct strings, at least one) at `now`.
   * Default: {@link AbstractStorage._get} for each id, a few at a time (a record the backend
   * cannot read counts as absent); a backend that can read many in one call overrides it.
   */
  protected _versions(ids: readonly string[], now: number): Promise<Map<string, number>> | Map<string, number> {
    return this.#versionsByGet(ids, now)
  }

  async #versionsByGet(ids: readonly string[], now: number): Promise<Map<string, number>> {
    const versions = new Map<string, number>()
    let next = 0
    const reader = async (): Promise<void> => {
      while (next < ids.length) {
        const id = ids[next++]!
        const record = await this.usableRecord(id, now)
        if (record !== undefined && isLive(record, now)) versions.set(id, record.version)
      }
    }
    await Promise.all(Array.from({ length: Math.min(VERSION_READS, ids.length) }, reader))
    return versions
  }

  /** What {@link AbstractStorage._get} holds for `id`, with a record it cannot use (`SESSION_INVALID_RECORD`) as none: for listing and probing. */
  protected async usableRecord(id: string, now: number): Promise<SessionRecord | undefined> {
    try {
      return await this._get(id, now)
    } catch (err) {
      if (hasCode(err, 'SESSION_INVALID_RECORD')) return undefined
      throw err
    }
  }

  /**
   * The sessions whose record carries `principal`, from the backend's index (the base drops those
   * that are not live, and sorts them). Default: not offered; a backend that overrides it declares
   * `principals: true`.
   */
  protected _findByPrincipal(_principal: string, _now: number): Promise<PrincipalSession[]> | PrincipalSession[] {
    throw unsupported(this.name, 'findByPrincipal', 'this storage does not index principals')
  }

  /** Number of live records at `now`. Default: counts {@link AbstractStorage._all}. */
  protected _length(now: number): Promise<number> | number {
    return this.#countAll(now)
  }

  async #countAll(now: number): Promise<number> {
    let count = 0
    for await (const [, record] of await this._all(now)) if (isLive(record, now)) count++
    return count
  }

  /** Every record with its id (the base drops those that are not live). Default: not offered. */
  protected _all(_now: number): AsyncIterable<[string, SessionRecord]> | Iterable<[string, SessionRecord]> | Promise<Iterable<[string, SessionRecord]>> {
    throw unsupported(this.name, 'all')
  }

  /** Delete every record. Default: not offered. */
  protected _clear(): Promise<void> | void {
    throw unsupported(this.name, 'clear')
  }

  /** Delete the records expired at `now`; how many. Default: not offered. */
  protected _cleanup(_now: number): Promise<number> | number {
    throw unsupported(this.name, 'cleanup')
  }

  /** Release the backend once no call is in flight. Default: nothing to release. */
  protected _close(): Promise<void> | void {}

  #single(op: StorageOperation): Promise<boolean | WriteConflict> {
    return this.#call('write a session', (now) => {
      const problem = checkOperation(this.name, op)
      if (problem !== undefined) throw problem
      return this._apply(normalizeOperation(op), now)
    })
  }

  /**
   * `work` at the current time, once the backend is open, counted in flight (close() waits for
   * it), its failure wrapped as `storageError`. A backend that is open and answers at once (a
   * plain value) costs no further promise.
   */
  #call<T>(action: string, work: (now: number) => Promise<T> | T): Promise<T> {
    if (this.#closing !== undefined) return Promise.reject(storageClosed(this.name))
    this.#inflight++
    let answer: Promise<T> | T
    try {
      // A call accepted before close() goes ahead: close() waits for it.
      const opening = this._open()
      answer = opening === undefined ? work(this.#now()) : Promise.resolve(opening).then(() => work(this.#now()))
    } catch (err) {
      this.#settled()
      return Promise.reject(storageError(this.name, action, err))
    }
    if (!isPromiseLike(answer)) {
      this.#settled()
      return Promise.resolve(answer)
    }
    return Promise.resolve(answer).then(
      (value) => {
        this.#settled()
        return value
      },
      (err: unknown) => {
        this.#settled()
        throw storageError(this.name, action, err)
      },
    )
  }

  #settled(): void {
    if (--this.#inflight === 0 && this.#drained !== undefined) this.#drained()
  }
}

/** A key change with the optional fields its caller gave, and none it did not. */
function withOptional<T extends Extract<StorageOperation, { type: 'update' | 'remove' }>>(op: T, ifVersion: number | undefined, principal: PrincipalChange): T {
  const extended: { -readonly [K in keyof T]: T[K] } = op
  if (ifVersion !== undefined) extended.ifVersion = ifVersion
  if (principal !== undefined) extended.principal = principal
  return extended
}

function isPromiseLike<T>(value: Promise<T> | T): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function'
}
