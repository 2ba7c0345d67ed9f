/**
 * A storage that passes every call to another one but declares itself not shared: the manager
 * then trusts its cache for ever (no version checks) and issues cookies without a version. The
 * cluster bench puts it in front of MySQLStorage to measure what the shared-storage path costs
 * on the same database. Not for use with several processes.
 */
import type { JsonValue, SessionRecordInput, Storage, StorageCapabilities, WriteConflict } from '../../src/types.js'

/** See the module comment. */
export class UnsharedStorage implements Storage {
  readonly name: string
  readonly capabilities: StorageCapabilities = { batch: true, admin: false, shared: false }
  readonly batch?: Storage['batch']
  readonly #inner: Storage

  constructor(inner: Storage) {
    this.#inner = inner
    this.name = inner.name
    if (inner.batch !== undefined) this.batch = (...args) => inner.batch!(...args)
    else this.capabilities = { ...this.capabilities, batch: false }
  }

  get(...args: Parameters<Storage['get']>): ReturnType<Storage['get']> {
    return this.#inner.get(...args)
  }

  set(id: string, record: SessionRecordInput): Promise<void>
  set(id: string, record: SessionRecordInput, ifVersion?: number): Promise<void | WriteConflict>
  set(id: string, record: SessionRecordInput, ifVersion?: number): Promise<void | WriteConflict> {
    return this.#inner.set(id, record, ifVersion)
  }

  update(id: string, key: string, value: JsonValue, expiresAt: number): Promise<boolean>
  update(id: string, key: string, value: JsonValue, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict>
  update(id: string, key: string, value: JsonValue, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict> {
    return this.#inner.update(id, key, value, expiresAt, ifVersion)
  }

  remove(id: string, key: string, expiresAt: number): Promise<boolean>
  remove(id: string, key: string, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict>
  remove(id: string, key: string, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict> {
    return this.#inner.remove(id, key, expiresAt, ifVersion)
  }

  delete(id: string): Promise<void>
  delete(id: string, ifVersion?: number): Promise<void | WriteConflict>
  delete(id: string, ifVersion?: number): Promise<void | WriteConflict> {
    return this.#inner.delete(id, ifVersion)
  }

  touch(...args: Parameters<Storage['touch']>): ReturnType<Storage['touch']> {
    return this.#inner.touch(...args)
  }

  close(): Promise<void> {
    return this.#inner.close()
  }
}
