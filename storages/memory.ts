import { LRUCache } from 'lru-cache'
import {
  AbstractStorage,
  dataFromEntries,
  decideWrite,
  encodeValue,
  isLive,
  knownOptionsCheck,
  nextVersion,
  optionNames,
  optionsObject,
  positiveIntegerOption,
  principalSession,
  type AbstractStorageOptions,
} from '../src/kit/index.js'
import type {
  Batch,
  BatchOutcome,
  PrincipalSession,
  SessionRecord,
  SessionRecordInput,
  StorageCapabilities,
  StorageOperation,
  WriteConflict,
} from '../src/kit/index.js'

/** Options of {@link MemoryStorage}. */
export interface MemoryStorageOptions extends AbstractStorageOptions {
  /** Most sessions kept; the least recently used go first. Default 100_000. */
  max?: number
}

const KNOWN = optionNames<MemoryStorageOptions>({ max: true, now: true })

interface Stored {
  /** key → the value's JSON, so nothing a caller holds can change what is stored. */
  values: Map<string, string>
  createdAt: number
  expiresAt: number
  absoluteExpiresAt: number | undefined
  version: number
  issuer: string | undefined
  principal: string | undefined
}

/**
 * Keeps sessions in this process's memory. For tests and development only: everything is lost
 * when the process exits and nothing is shared between processes. Bounded (least recently used
 * sessions go first) and honours expiry; reading an unknown id allocates nothing. Conditional
 * writes (`ifVersion`) are checked and applied in one synchronous step, so nothing can come
 * between; `versions(ids)` reads the map. Principals are indexed in a map of principal → ids,
 * kept with every write, delete, eviction and cleanup.
 *
 * @example
 * ```ts
 * const manager = new SessionManager({ storage: new MemoryStorage({ max: 10_000 }) })
 * ```
 */
export class MemoryStorage extends AbstractStorage {
  /** Batches, the operators' side, the principal index; one process only. */
  readonly capabilities: StorageCapabilities = { batch: true, admin: true, shared: false, principals: true }
  readonly #sessions: LRUCache<string, Stored>
  /** principal → the ids whose record carries it. */
  readonly #principals = new Map<string, Set<string>>()

  constructor(options: MemoryStorageOptions = {}) {
    knownOptionsCheck(optionsObject(options, 'MemoryStorage'), 'MemoryStorage', KNOWN)
    super('memory', options, 'MemoryStorage')
    this.#sessions = new LRUCache<string, Stored>({
      max: positiveIntegerOption(options.max, 'MemoryStorage', 'max', 100_000),
      // Deleted, evicted or cleared: out of the index too (a replacement re-indexes in #set).
      dispose: (stored, id, reason) => {
        if (reason !== 'set') this.#index(id, stored.principal, undefined)
      },
    })
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

  protected override _findByPrincipal(principal: string, now: number): PrincipalSession[] {
    const sessions: PrincipalSession[] = []
    for (const id of this.#principals.get(principal) ?? []) {
      const stored = this.#sessions.peek(id)
      if (stored !== undefined && stored.principal === principal && isLive(stored, now)) sessions.push(principalSession(id, toRecord(stored)))
    }
    return sessions
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
        if (op.type !== 'touch') {
          stored!.version++
          if (op.principal !== undefined) {
            this.#index(op.id, stored!.principal, op.principal ?? undefined)
            stored!.principal = op.principal ?? undefined
          }
        }
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
    const { createdAt, expiresAt, absoluteExpiresAt, issuer, principal } = record
    this.#index(id, this.#sessions.peek(id)?.principal, principal)
    this.#sessions.set(id, { values, createdAt, expiresAt, absoluteExpiresAt, version, issuer, principal })
  }

  /** Move `id` in the principal index from `before` to `after` (either may be none). */
  #index(id: string, before: string | undefined, after: string | undefined): void {
    if (before === after) return
    if (before !== undefined) {
      const ids = this.#principals.get(before)
      ids?.delete(id)
      if (ids?.size === 0) this.#principals.delete(before)
    }
    if (after !== undefined) {
      let ids = this.#principals.get(after)
      if (ids === undefined) this.#principals.set(after, (ids = new Set()))
      ids.add(id)
    }
  }
}

function toRecord(stored: Stored): SessionRecord {
  const record: SessionRecord = { data: dataFromEntries(stored.values)!, createdAt: stored.createdAt, expiresAt: stored.expiresAt, version: stored.version }
  if (stored.absoluteExpiresAt !== undefined) record.absoluteExpiresAt = stored.absoluteExpiresAt
  if (stored.issuer !== undefined) record.issuer = stored.issuer
  if (stored.principal !== undefined) record.principal = stored.principal
  return record
}
