/**
 * A storage that passes every call to another one but declares itself not shared: the manager
 * then trusts its cache for ever (no version checks) and issues cookies without a version. The
 * cluster bench puts it in front of MySQLStorage to measure what the shared-storage path costs
 * on the same database. Not for use with several processes.
 */
import type { Storage, StorageCapabilities } from '../../src/types.js'

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

  set(...args: Parameters<Storage['set']>): ReturnType<Storage['set']> {
    return this.#inner.set(...args)
  }

  update(...args: Parameters<Storage['update']>): ReturnType<Storage['update']> {
    return this.#inner.update(...args)
  }

  remove(...args: Parameters<Storage['remove']>): ReturnType<Storage['remove']> {
    return this.#inner.remove(...args)
  }

  delete(...args: Parameters<Storage['delete']>): ReturnType<Storage['delete']> {
    return this.#inner.delete(...args)
  }

  touch(...args: Parameters<Storage['touch']>): ReturnType<Storage['touch']> {
    return this.#inner.touch(...args)
  }

  close(): Promise<void> {
    return this.#inner.close()
  }
}
