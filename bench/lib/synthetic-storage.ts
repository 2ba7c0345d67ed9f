/**
 * A storage for benches that isolates the process's cache: `get` returns a live record built on
 * the fly for any id (its data from `makeJson(id)`, parsed as a real storage would), and every
 * write is acknowledged and dropped. It keeps nothing, so heap measurements count the cache
 * alone. Not a storage for anything else.
 */
import type { BatchOutcome, SessionRecord, Storage, StorageOperation } from '../../src/types.js'

/** Options of {@link SyntheticStorage}. */
export interface SyntheticStorageOptions {
  /** JSON text of the data of `id`. Default `{"n":1}`. */
  makeJson?: (id: string) => string
  /**
   * Idle lifetime of the records `get` returns, in ms. Default: the manager's default `maxAge`
   * (two weeks), so a loaded session is fresh and its first request writes no touch.
   */
  maxAgeMs?: number
}

/** See the module comment. */
export class SyntheticStorage implements Storage {
  readonly name = 'synthetic'
  readonly #makeJson: (id: string) => string
  readonly #maxAgeMs: number
  /** Storage reads so far. */
  reads = 0
  /** Write operations acknowledged so far. */
  writes = 0

  constructor(options: SyntheticStorageOptions = {}) {
    this.#makeJson = options.makeJson ?? (() => '{"n":1}')
    this.#maxAgeMs = options.maxAgeMs ?? 1_209_600_000
  }

  get(id: string): Promise<SessionRecord | undefined> {
    this.reads++
    const now = Date.now()
    return Promise.resolve({ data: JSON.parse(this.#makeJson(id)) as SessionRecord['data'], createdAt: now, expiresAt: now + this.#maxAgeMs, version: 1 })
  }

  set(): Promise<void> {
    this.writes++
    return Promise.resolve()
  }

  update(): Promise<boolean> {
    this.writes++
    return Promise.resolve(true)
  }

  remove(): Promise<boolean> {
    this.writes++
    return Promise.resolve(true)
  }

  delete(): Promise<void> {
    this.writes++
    return Promise.resolve()
  }

  touch(): Promise<boolean> {
    this.writes++
    return Promise.resolve(true)
  }

  batch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    this.writes += operations.length
    return Promise.resolve(operations.map(() => true))
  }

  length(): Promise<number> {
    return Promise.resolve(0)
  }

  async *all(): AsyncIterable<[string, SessionRecord]> {}

  clear(): Promise<void> {
    return Promise.resolve()
  }

  cleanup(): Promise<number> {
    return Promise.resolve(0)
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}
