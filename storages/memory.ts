import { LRUCache } from 'lru-cache'
import {
  AbstractStorage,
  dataFromEntries,
  decideWrite,
  encodeValue,
  isLive,
  nextVersion,
  positiveIntegerOption,
  type AbstractStorageOptions,
} from '../src/kit/index.js'
import type { Batch, BatchOutcome, SessionRecord, SessionRecordInput, StorageCapabilities, StorageOperation, WriteConflict } from '../src/kit/index.js'

/** Options of {@link MemoryStorage}. */
export interface MemoryStorageOptions extends AbstractStorageOptions {
  /** Most sessions kept; the least recently used go first. Default 100_000. */
  max?: number
}

interface Stored {
  /** key → the value's JSON, so nothing a caller holds can change what is stored. */
  values: Map<string, string>
  createdAt: number
  expiresAt: number
  absoluteExpiresAt: number | undefined
  version: number
  issuer: string | undefined
}

/**
 * Keeps sessions in this process's memory. For tests and development only: everything is lost
 * when the process exits and nothing is shared between processes. Bounded (least recently used
 * sessions go first) and honours expiry; reading an unknown id allocates nothing. Conditional
 * writes (`ifVersion`) are checked and applied in one synchronous step, so nothing can come
 * between; `versions(ids)` reads the map.
 *
 * @example
 * ```ts
 * const manager = new SessionManager({ storage: new MemoryStorage({ max: 10_000 }) })
 * ```
 */
export class MemoryStorage extends AbstractStorage {
  /** Batches, the operators' side; one process only. */
  readonly capabilities: StorageCapabilities = { batch: true, admin: true, shared: false }
  readonly #sessions: LRUCache<string, Stored>

  constructor(options: MemoryStorageOptions = {}) {
    super('memory', options, 'MemoryStorage')
    this.#sessions = new LRUCache({ max: positiveIntegerOption(options.max, 'MemoryStorage', 'max', 100_000) })
  }

  /** Apply several operations in array order; one outcome each. */
  batch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    return this.applyBatch(operations)
  }

  protected override _get(id: string, now: number): SessionRecord | undefined {
    const stored = this.#live(id, now)
    return stored === undefined ? undefined : toRecord(stored)
  }

  protected override _apply(op: StorageOperation, now: number): boolean | WriteConflict {
    return this.#apply(op, now)
  }

  protected override _versions(ids: readonly string[], now: number): Map<string, number> {
    const versions = new Map<string, number>()
    for (const id of ids) {
      const stored = this.#sessions.peek(id)
      if (stored !== undefined && isLive(stored, now)) versions.set(id, stored.version)
    }
    return versions
  }

  protected override _write(batch: Batch, now: number): void {
    batch.applyEachSync((op) => this.#apply(op, now))
  }

  protected override _all(): Array<[string, SessionRecord]> {
    return [...this.#sessions.entries()].map(([id, stored]) => [id, toRecord(stored)])
  }

  protected override _length(now: number): number {
    let count = 0
    for (const stored of this.#sessions.values()) if (isLive(stored, now)) count++
    return count
  }

  protected override _clear(): void {
    this.#sessions.clear()
  }

  protected override _cleanup(now: number): number {
    let removed = 0
    for (const [id, stored] of [...this.#sessions.entries()]) {
      if (!isLive(stored, now)) {
        this.#sessions.delete(id)
        removed++
      }
    }
    return removed
  }

  protected override _close(): void {
    this.#sessions.clear()
  }

  #apply(op: StorageOperation, now: number): boolean | WriteConflict {
    const stored = this.#live(op.id, now)
    const decision = decideWrite(op, stored)
    if (decision !== 'apply') return decision
    switch (op.type) {
      case 'set':
        this.#set(op.id, op.record, nextVersion(stored))
        return true
      case 'delete':
        this.#sessions.delete(op.id)
        return true
      default:
        // decideWrite applies an update, remove or touch only to a live record.
        if (op.type === 'update') stored!.values.set(op.key, encodeValue(op.value, op.key))
        else if (op.type === 'remove') stored!.values.delete(op.key)
        if (op.type !== 'touch') stored!.version++
        stored!.expiresAt = op.expiresAt
        return true
    }
  }

  #live(id: string, now: number): Stored | undefined {
    const stored = this.#sessions.get(id)
    if (stored === undefined || isLive(stored, now)) return stored
    this.#sessions.delete(id)
    return undefined
  }

  #set(id: string, record: SessionRecordInput, version: number): void {
    const values = new Map<string, string>()
    for (const key of Object.keys(record.data)) values.set(key, encodeValue(record.data[key], key))
    const { createdAt, expiresAt, absoluteExpiresAt, issuer } = record
    this.#sessions.set(id, { values, createdAt, expiresAt, absoluteExpiresAt, version, issuer })
  }
}

function toRecord(stored: Stored): SessionRecord {
  const record: SessionRecord = { data: dataFromEntries(stored.values)!, createdAt: stored.createdAt, expiresAt: stored.expiresAt, version: stored.version }
  if (stored.absoluteExpiresAt !== undefined) record.absoluteExpiresAt = stored.absoluteExpiresAt
  if (stored.issuer !== undefined) record.issuer = stored.issuer
  return record
}
