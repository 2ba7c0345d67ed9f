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
  readonly #inner: Storage
  readonly #ms: number

  constructor(inner: Storage, ms: number) {
    this.#inner = inner
    this.#ms = ms
    this.name = inner.name
    this.capabilities = capabilitiesOf(inner)
    if (typeof inner.batch === 'function') this.batch = (operations) => this.#bound('batch', () => inner.batch!(operations))
    if (typeof inner.versions === 'function') this.versions = (ids) => this.#bound('versions', () => inner.versions!(ids))
    if (typeof inner.findByPrincipal === 'function')
      this.findByPrincipal = (principal) => this.#bound('findByPrincipal', () => inner.findByPrincipal!(principal))
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

  /** `call()`, or a rejection once `#ms` passed without an answer. */
  #bound<T>(method: string, call: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new SessionError('SESSION_STORAGE_ERROR', `the ${this.name} storage did not answer ${method} within ${this.#ms} ms (storageTimeout)`))
      }, this.#ms)
      const settled = (): void => clearTimeout(timer)
      let answer: Promise<T>
      try {
        answer = Promise.resolve(call())
      } catch (err) {
        settled()
        reject(err)
        return
      }
      answer.then(
        (value) => {
          settled()
          resolve(value)
        },
        (err: unknown) => {
          settled()
          reject(err)
        },
      )
    })
  }
}
