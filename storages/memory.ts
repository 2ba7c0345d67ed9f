import { LRUCache } from 'lru-cache'
import type { BatchOutcome, JsonValue, SessionData, SessionRecord, SessionRecordInput, Storage, StorageOperation } from '../src/types.js'

/** Options of {@link MemoryStorage}. */
export interface MemoryStorageOptions {
  /** Most sessions kept; the least recently used go first. Default 100_000. */
  max?: number
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number
}

interface Stored {
  /** key → the value's JSON, so nothing a caller holds can change what is stored. */
  values: Map<string, string>
  createdAt: number
  expiresAt: number
  absoluteExpiresAt: number | undefined
  version: number
}

/**
 * Keeps sessions in this process's memory. For tests and development only: everything is lost
 * when the process exits and nothing is shared between processes. Bounded (least recently used
 * sessions go first) and honours expiry; reading an unknown id allocates nothing.
 *
 * @example
 * ```ts
 * const manager = new SessionManager({ storage: new MemoryStorage({ max: 10_000 }) })
 * ```
 */
export class MemoryStorage implements Storage {
  readonly name = 'memory'
  readonly #sessions: LRUCache<string, Stored>
  readonly #now: () => number
  #closed = false

  constructor(options: MemoryStorageOptions = {}) {
    const max = options.max ?? 100_000
    if (!Number.isInteger(max) || max < 1) throw new TypeError('MemoryStorage option "max" must be a positive integer')
    if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError('MemoryStorage option "now" must be a function')
    this.#sessions = new LRUCache({ max })
    this.#now = options.now ?? Date.now
  }

  get(id: string): Promise<SessionRecord | undefined> {
    return this.#run(() => {
      const stored = this.#live(id)
      return stored === undefined ? undefined : toRecord(stored)
    })
  }

  set(id: string, record: SessionRecordInput): Promise<void> {
    return this.#run(() => this.#set(id, record))
  }

  update(id: string, key: string, value: JsonValue, expiresAt: number): Promise<boolean> {
    return this.#run(() => this.#update(id, key, value, expiresAt))
  }

  remove(id: string, key: string, expiresAt: number): Promise<boolean> {
    return this.#run(() => this.#update(id, key, undefined, expiresAt))
  }

  delete(id: string): Promise<void> {
    return this.#run(() => {
      this.#sessions.delete(id)
    })
  }

  touch(id: string, expiresAt: number): Promise<boolean> {
    return this.#run(() => {
      const stored = this.#live(id)
      if (stored === undefined) return false
      stored.expiresAt = expiresAt
      stored.version++
      return true
    })
  }

  batch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    return this.#run(() =>
      operations.map((op): BatchOutcome => {
        switch (op.type) {
          case 'set':
            this.#set(op.id, op.record)
            return true
          case 'update':
            return this.#update(op.id, op.key, op.value, op.expiresAt)
          case 'remove':
            return this.#update(op.id, op.key, undefined, op.expiresAt)
          case 'delete':
            this.#sessions.delete(op.id)
            return true
          case 'touch': {
            const stored = this.#live(op.id)
            if (stored === undefined) return false
            stored.expiresAt = op.expiresAt
            stored.version++
            return true
          }
        }
      }),
    )
  }

  length(): Promise<number> {
    return this.#run(() => {
      let count = 0
      const now = this.#now()
      for (const stored of this.#sessions.values()) if (isLive(stored, now)) count++
      return count
    })
  }

  async *all(): AsyncIterable<[string, SessionRecord]> {
    this.#assertOpen()
    const now = this.#now()
    for (const [id, stored] of [...this.#sessions.entries()]) {
      if (isLive(stored, now)) yield [id, toRecord(stored)]
    }
  }

  clear(): Promise<void> {
    return this.#run(() => this.#sessions.clear())
  }

  cleanup(now: number = this.#now()): Promise<number> {
    return this.#run(() => {
      let removed = 0
      for (const [id, stored] of [...this.#sessions.entries()]) {
        if (!isLive(stored, now)) {
          this.#sessions.delete(id)
          removed++
        }
      }
      return removed
    })
  }

  close(): Promise<void> {
    this.#closed = true
    this.#sessions.clear()
    return Promise.resolve()
  }

  #run<T>(work: () => T): Promise<T> {
    try {
      this.#assertOpen()
      return Promise.resolve(work())
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('the memory storage is closed')
  }

  #live(id: string): Stored | undefined {
    const stored = this.#sessions.get(id)
    if (stored === undefined) return undefined
    if (isLive(stored, this.#now())) return stored
    this.#sessions.delete(id)
    return undefined
  }

  #set(id: string, record: SessionRecordInput): void {
    const values = new Map<string, string>()
    for (const key of Object.keys(record.data)) values.set(key, JSON.stringify(record.data[key]))
    const previous = this.#sessions.get(id)
    this.#sessions.set(id, {
      values,
      createdAt: record.createdAt,
      expiresAt: record.expiresAt,
      absoluteExpiresAt: record.absoluteExpiresAt,
      version: (previous?.version ?? 0) + 1,
    })
  }

  #update(id: string, key: string, value: JsonValue | undefined, expiresAt: number): boolean {
    const stored = this.#live(id)
    if (stored === undefined) return false
    if (value === undefined) stored.values.delete(key)
    else stored.values.set(key, JSON.stringify(value))
    stored.expiresAt = expiresAt
    stored.version++
    return true
  }
}

function isLive(stored: Stored, now: number): boolean {
  return now < stored.expiresAt && (stored.absoluteExpiresAt === undefined || now < stored.absoluteExpiresAt)
}

function toRecord(stored: Stored): SessionRecord {
  // One JSON text parsed at once yields own properties even for keys like "__proto__".
  let json = '{'
  for (const [key, value] of stored.values) json += (json.length > 1 ? ',' : '') + JSON.stringify(key) + ':' + value
  const data = JSON.parse(json + '}') as SessionData
  const record: SessionRecord = { data, createdAt: stored.createdAt, expiresAt: stored.expiresAt, version: stored.version }
  if (stored.absoluteExpiresAt !== undefined) record.absoluteExpiresAt = stored.absoluteExpiresAt
  return record
}
