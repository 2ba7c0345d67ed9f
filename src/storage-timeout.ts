import { SessionError } from './errors.js'
import { capabilitiesOf } from './kit/contract.js'
import type { PrincipalChange, PrincipalSession } from './kit/contract.js'
import type { BatchOutcome, JsonValue, SessionRecord, SessionRecordInput, Storage, StorageCapabilities, StorageOperation, WriteConflict } from './types.js'

/**
 * `storage` with a deadline on every call the manager makes: a call that has not settled after
 * `timeoutMs` rejects with `SESSION_STORAGE_ERROR` ("did not answer … within …"), which the
 * manager handles as any storage failure: a read becomes `SESSION_STORAGE_UNAVAILABLE` (503) and
 * is no longer shared with later loads of the id, a write is retried by the write queue and then
 * fails with `SESSION_STORAGE_FAILED`. What the backend does with a call that timed out is its
 * own business: it may still apply it later (the write queue's retry of a whole-record write or a
 * delete is harmless; a conditional write then meets its own version and is rebased).
 * `close()` is not bounded. A `timeoutMs` of `Infinity` (or more than a timer can wait, about 24 days) returns `storage` itself.
 * @internal
 */
export function withTimeout(storage: Storage, timeoutMs: number): Storage {
  // Timers cannot wait longer than 2^31 - 1 ms (they would fire at once): that long is no bound.
  if (timeoutMs > MAX_TIMER_MS) return storage
  return new TimedStorage(storage, timeoutMs)
}

const MAX_TIMER_MS = 2 ** 31 - 1

class TimedStorage implements Storage {
  readonly name: string
  readonly capabilities: StorageCapabilities
  readonly batch?: (operations: readonly StorageOperation[]) => Promise<BatchOutcome[]>
  readonly versions?: (ids: readonly string[]) => Promise<Map<string, number>>
  readonly findByPrincipal?: (principal: string) => Promise<PrincipalSession[]>
  readonly open?: () => Promise<void>
  readonly #inner: Storage
  readonly #deadlines: Deadlines

  constructor(inner: Storage, ms: number) {
    this.#inner = inner
    this.name = inner.name
    this.#deadlines = new Deadlines(ms, (method) => `the ${inner.name} storage did not answer ${method} within ${ms} ms (storageTimeout)`)
    this.capabilities = capabilitiesOf(inner)
    if (typeof inner.batch === 'function') this.batch = (operations) => this.#bound('batch', () => inner.batch!(operations))
    if (typeof inner.versions === 'function') this.versions = (ids) => this.#bound('versions', () => inner.versions!(ids))
    if (typeof inner.findByPrincipal === 'function')
      this.findByPrincipal = (principal) => this.#bound('findByPrincipal', () => inner.findByPrincipal!(principal))
    if (typeof inner.open === 'function') this.open = () => this.#bound('open', () => inner.open!())
  }

  get(id: string): Promise<SessionRecord | undefined> {
    return this.#bound('get', () => this.#inner.get(id))
  }

  set(id: string, record: SessionRecordInput): Promise<void>
  set(id: string, record: SessionRecordInput, ifVersion?: number): Promise<void | WriteConflict>
  set(id: string, record: SessionRecordInput, ifVersion?: number): Promise<void | WriteConflict> {
    return this.#bound('set', () => (ifVersion === undefined ? this.#inner.set(id, record) : this.#inner.set(id, record, ifVersion)))
  }

  update(id: string, key: string, value: JsonValue, expiresAt: number): Promise<boolean>
  update(id: string, key: string, value: JsonValue, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict>
  update(
    id: string,
    key: string,
    value: JsonValue,
    expiresAt: number,
    ifVersion: number | undefined,
    principal: PrincipalChange,
  ): Promise<boolean | WriteConflict>
  update(id: string, key: string, value: JsonValue, expiresAt: number, ifVersion?: number, principal?: PrincipalChange): Promise<boolean | WriteConflict> {
    return this.#bound('update', () => {
      if (principal !== undefined) return this.#inner.update(id, key, value, expiresAt, ifVersion, principal)
      return ifVersion === undefined ? this.#inner.update(id, key, value, expiresAt) : this.#inner.update(id, key, value, expiresAt, ifVersion)
    })
  }

  remove(id: string, key: string, expiresAt: number): Promise<boolean>
  remove(id: string, key: string, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict>
  remove(id: string, key: string, expiresAt: number, ifVersion: number | undefined, principal: PrincipalChange): Promise<boolean | WriteConflict>
  remove(id: string, key: string, expiresAt: number, ifVersion?: number, principal?: PrincipalChange): Promise<boolean | WriteConflict> {
    return this.#bound('remove', () => {
      if (principal !== undefined) return this.#inner.remove(id, key, expiresAt, ifVersion, principal)
      return ifVersion === undefined ? this.#inner.remove(id, key, expiresAt) : this.#inner.remove(id, key, expiresAt, ifVersion)
    })
  }

  delete(id: string): Promise<void>
  delete(id: string, ifVersion?: number): Promise<void | WriteConflict>
  delete(id: string, ifVersion?: number): Promise<void | WriteConflict> {
    return this.#bound('delete', () => (ifVersion === undefined ? this.#inner.delete(id) : this.#inner.delete(id, ifVersion)))
  }

  touch(id: string, expiresAt: number): Promise<boolean> {
    return this.#bound('touch', () => this.#inner.touch(id, expiresAt))
  }

  close(): Promise<void> {
    return this.#inner.close()
  }

  #bound<T>(method: string, call: () => Promise<T>): Promise<T> {
    return bounded(this.#deadlines, method, call)
  }
}

/** `call()`, or a rejection once the time of `deadlines` passed without an answer. */
function bounded<T>(deadlines: Deadlines, method: string, call: () => Promise<T>): Promise<T> {
  let answer: Promise<T>
  try {
    answer = call()
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)))
  }
  return new Promise<T>((resolve, reject) => {
    const pending = deadlines.add(method, reject)
    Promise.resolve(answer).then(
      (value) => {
        deadlines.settle(pending)
        resolve(value)
      },
      (err: unknown) => {
        deadlines.settle(pending)
        reject(err)
      },
    )
  })
}

/** A storage call waiting for its answer, in {@link Deadlines}: a link of their list, oldest first. */
interface PendingCall {
  readonly method: string
  readonly deadline: number
  readonly reject: (error: Error) => void
  prev: PendingCall | undefined
  next: PendingCall | undefined
  settled: boolean
}

/**
 * The deadlines of a storage's calls in flight. Every call waits the same time, so deadlines
 * come in the order the calls were made: they are kept in that order, a call leaves the list as
 * it settles, and one timer, armed for the oldest call, serves them all (a timer per call costs
 * more than a fast storage's answer). The timer holds the process open only while a call waits.
 */
class Deadlines {
  readonly #ms: number
  readonly #describe: (method: string) => string
  #oldest: PendingCall | undefined
  #newest: PendingCall | undefined
  #timer: NodeJS.Timeout | undefined
  /** Whether the timer currently holds the process open. */
  #held = false

  constructor(ms: number, describe: (method: string) => string) {
    this.#ms = ms
    this.#describe = describe
  }

  add(method: string, reject: (error: Error) => void): PendingCall {
    const call: PendingCall = { method, deadline: performance.now() + this.#ms, reject, prev: this.#newest, next: undefined, settled: false }
    if (this.#newest === undefined) this.#oldest = call
    else this.#newest.next = call
    this.#newest = call
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#expire(), this.#ms)
      this.#held = true
    } else if (!this.#held) {
      this.#timer.ref()
      this.#held = true
    }
    return call
  }

  settle(call: PendingCall): void {
    if (call.settled) return
    call.settled = true
    const { prev, next } = call
    if (prev === undefined) this.#oldest = next
    else prev.next = next
    if (next === undefined) this.#newest = prev
    else next.prev = prev
    call.prev = call.next = undefined
    if (this.#oldest === undefined && this.#held) {
      // Left armed (re-arming per call is what this saves) but no longer keeping the process alive.
      this.#timer!.unref()
      this.#held = false
    }
  }

  /** Reject the calls past their deadline, then re-arm for the oldest one left. */
  #expire(): void {
    this.#timer = undefined
    this.#held = false
    const now = performance.now()
    let call = this.#oldest
    while (call !== undefined && call.deadline <= now) {
      this.settle(call)
      call.reject(new SessionError('SESSION_STORAGE_ERROR', this.#describe(call.method)))
      call = this.#oldest
    }
    if (call === undefined) return
    this.#timer = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(call.deadline - now)))
    this.#held = true
  }
}

/**
 * `call()`, or a `SESSION_STORAGE_ERROR` saying `message()` once `ms` passed without an answer
 * (`ms` beyond a timer's reach waits for ever).
 * @internal
 */
export function withDeadline<T>(call: () => Promise<T>, ms: number, message: () => string): Promise<T> {
  if (ms > MAX_TIMER_MS) {
    try {
      return Promise.resolve(call())
    } catch (err) {
      return Promise.reject(err)
    }
  }
  return bounded(new Deadlines(ms, message), '', call)
}
