import { MemoryStorage } from '../../storages/memory.js'
import type { BatchOutcome, JsonValue, SessionRecord, SessionRecordInput, Storage, StorageOperation } from '../../src/types.js'

type Call = { method: string; id?: string }

/**
 * A real MemoryStorage whose writes can be held back (`hold()` / `release()`) or made to fail
 * (`failWrites`), and whose reads can fail (`failReads`); it records every call. Used by core
 * tests to observe ordering, acknowledgement and failure handling.
 */
export class GatedStorage implements Storage {
  readonly name = 'gated'
  readonly inner: MemoryStorage
  readonly calls: Call[] = []
  failWrites = 0
  failReads = false
  #held = false
  #waiting: Array<() => void> = []

  constructor(inner = new MemoryStorage()) {
    this.inner = inner
  }

  /** Hold every write until `release()`. */
  hold(): void {
    this.#held = true
  }

  /** Let held writes (and later ones) through. */
  release(): void {
    this.#held = false
    const waiting = this.#waiting
    this.#waiting = []
    for (const go of waiting) go()
  }

  /** Writes currently held. */
  get heldCount(): number {
    return this.#waiting.length
  }

  count(method: string): number {
    return this.calls.filter((call) => call.method === method).length
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    this.calls.push({ method: 'get', id })
    if (this.failReads) throw new Error('gated storage: reads are failing')
    return this.inner.get(id)
  }

  set(id: string, record: SessionRecordInput): Promise<void> {
    return this.#write('set', id, () => this.inner.set(id, record))
  }

  update(id: string, key: string, value: JsonValue, expiresAt: number): Promise<boolean> {
    return this.#write('update', id, () => this.inner.update(id, key, value, expiresAt))
  }

  remove(id: string, key: string, expiresAt: number): Promise<boolean> {
    return this.#write('remove', id, () => this.inner.remove(id, key, expiresAt))
  }

  delete(id: string): Promise<void> {
    return this.#write('delete', id, () => this.inner.delete(id))
  }

  touch(id: string, expiresAt: number): Promise<boolean> {
    return this.#write('touch', id, () => this.inner.touch(id, expiresAt))
  }

  batch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    return this.#write('batch', undefined, () => this.inner.batch(operations))
  }

  length(): Promise<number> {
    return this.inner.length()
  }

  all(): AsyncIterable<[string, SessionRecord]> {
    return this.inner.all()
  }

  clear(): Promise<void> {
    return this.inner.clear()
  }

  cleanup(now?: number): Promise<number> {
    return this.inner.cleanup(now)
  }

  close(): Promise<void> {
    this.calls.push({ method: 'close' })
    return this.inner.close()
  }

  async #write<T>(method: string, id: string | undefined, work: () => Promise<T>): Promise<T> {
    this.calls.push(id === undefined ? { method } : { method, id })
    if (this.#held) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    if (this.failWrites > 0) {
      this.failWrites--
      throw new Error(`gated storage: ${method} failed`)
    }
    return work()
  }
}
