import type { SessionRecord, Storage, StorageAdmin } from '../../src/types.js'

/** One acknowledged write that storage does not reflect. */
export interface MissingWrite {
  readonly id: string
  readonly key: string
  /** The value acknowledged last for this key. */
  readonly expected: number
  /** What storage holds instead (`undefined`: key or whole session absent). */
  readonly found: unknown
}

/** What {@link AckLedger.verify} found. */
export interface LedgerReport {
  /** Sessions checked. */
  readonly sessions: number
  /** Keys checked. */
  readonly keys: number
  /** Destroyed sessions checked to be absent. */
  readonly destroyed: number
  readonly missing: readonly MissingWrite[]
  /** Destroyed sessions that storage still holds. */
  readonly resurrected: readonly string[]
  /**
   * Sessions whose destroy or renew was sent but never answered (the server died meanwhile):
   * accepted either way, as long as their data is intact somewhere (renew) or intact or gone
   * (destroy). How each one ended up.
   */
  readonly inDoubt: Readonly<Record<'destroyed' | 'intact' | 'moved', number>>
}

/**
 * Remembers every write a storage acknowledged, to check later that storage holds it.
 *
 * Values are increasing integers per key: storage must hold, for each key, the last acknowledged
 * value or a later one (a write that was refused after reaching the storage may have landed too,
 * but nothing older than what was acknowledged may show). Destroyed sessions must be absent.
 *
 * @example
 * ```ts
 * await session.set('n', 7)
 * ledger.acknowledged(session.id, 'n', 7)
 * const report = await ledger.verify(storage)
 * t.deepEqual(report.missing, [])
 * ```
 */
export class AckLedger {
  readonly #sessions = new Map<string, Map<string, number>>()
  readonly #destroyed = new Set<string>()
  readonly #inDoubt = new Map<string, 'destroy' | 'renew'>()

  /** `key` of session `id` was acknowledged with `value`. */
  acknowledged(id: string, key: string, value: number): void {
    let keys = this.#sessions.get(id)
    if (keys === undefined) this.#sessions.set(id, (keys = new Map<string, number>()))
    const previous = keys.get(key)
    if (previous === undefined || value > previous) keys.set(key, value)
  }

  /**
   * A destroy or renew of `id` is being sent. Until {@link AckLedger.destroyed} or
   * {@link AckLedger.renewed} records its answer, the session may or may not have been changed.
   */
  sending(id: string, operation: 'destroy' | 'renew'): void {
    this.#inDoubt.set(id, operation)
  }

  /** Session `oldId` was renewed to `newId` (acknowledged): its keys live on under the new id. */
  renewed(oldId: string, newId: string): void {
    this.#inDoubt.delete(oldId)
    const keys = this.#sessions.get(oldId)
    this.#sessions.delete(oldId)
    this.#destroyed.add(oldId)
    if (keys !== undefined) for (const [key, value] of keys) this.acknowledged(newId, key, value)
  }

  /** Session `id` was destroyed (acknowledged): storage must not hold it. */
  destroyed(id: string): void {
    this.#inDoubt.delete(id)
    this.#sessions.delete(id)
    this.#destroyed.add(id)
  }

  /** Acknowledged writes recorded (last value per key). */
  get size(): number {
    let count = 0
    for (const keys of this.#sessions.values()) count += keys.size
    return count
  }

  /** Session ids with acknowledged data. */
  ids(): string[] {
    return [...this.#sessions.keys()]
  }

  /** Apply one line written by {@link formatLedgerLine}. */
  replay(line: string): void {
    const [kind, id, key, value] = line.split('\t')
    if (kind === 'set' && id !== undefined && key !== undefined && value !== undefined) this.acknowledged(id, key, Number(value))
    else if (kind === 'renew' && id !== undefined && key !== undefined) this.renewed(id, key)
    else if (kind === 'destroy' && id !== undefined) this.destroyed(id)
  }

  /** Read every recorded session back from `storage` and compare. */
  async verify(storage: Pick<Storage & StorageAdmin, 'get' | 'all'>): Promise<LedgerReport> {
    const missing: MissingWrite[] = []
    const resurrected: string[] = []
    const inDoubt = { destroyed: 0, intact: 0, moved: 0 }
    let keysChecked = 0
    for (const [id, keys] of this.#sessions) {
      const record: SessionRecord | undefined = await storage.get(id)
      const doubt = this.#inDoubt.get(id)
      if (doubt !== undefined && (record === undefined || !holds(record, keys))) {
        if (doubt === 'destroy' && record === undefined) {
          inDoubt.destroyed++
          continue
        }
        if (doubt === 'renew' && (await this.#heldElsewhere(storage, id, keys))) {
          inDoubt.moved++
          continue
        }
      } else if (doubt !== undefined) {
        inDoubt.intact++
      }
      for (const [key, expected] of keys) {
        keysChecked++
        const found = record?.data[key]
        if (typeof found !== 'number' || found < expected) missing.push({ id, key, expected, found })
      }
    }
    for (const id of this.#destroyed) {
      if (this.#sessions.has(id)) continue
      if ((await storage.get(id)) !== undefined) resurrected.push(id)
    }
    return { sessions: this.#sessions.size, keys: keysChecked, destroyed: this.#destroyed.size, missing, resurrected, inDoubt }
  }

  // A renew that was not answered may have moved the data to an id the client never learned.
  async #heldElsewhere(storage: Pick<StorageAdmin, 'all'>, id: string, keys: ReadonlyMap<string, number>): Promise<boolean> {
    for await (const [otherId, record] of storage.all()) {
      if (otherId !== id && holds(record, keys)) return true
    }
    return false
  }
}

function holds(record: SessionRecord, keys: ReadonlyMap<string, number>): boolean {
  for (const [key, expected] of keys) {
    const found = record.data[key]
    if (typeof found !== 'number' || found < expected) return false
  }
  return true
}

/** One ledger line (tab-separated, no newline) for a file or a pipe; see {@link AckLedger.replay}. */
export function formatLedgerLine(kind: 'set', id: string, key: string, value: number): string
export function formatLedgerLine(kind: 'renew', oldId: string, newId: string): string
export function formatLedgerLine(kind: 'destroy', id: string): string
export function formatLedgerLine(kind: string, ...fields: Array<string | number>): string {
  return [kind, ...fields].join('\t')
}
