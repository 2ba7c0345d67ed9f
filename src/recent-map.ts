/**
 * A memo of the most recently used entries, in two generations of plain Maps: entries are added
 * to the young one; a hit in the old one moves the entry to the young one; once the young one
 * holds `max` entries it becomes the old one (the previous old one is dropped) and a new young
 * one starts. The `max` most recently used entries are always held (every entry an lru-cache
 * of `max` would hold), and at most `2 × max`.
 *
 * Beside such an lru-cache it holds only the Map entries: no key, value and link arrays
 * allocated for every slot up front (about 28 B a slot), and a hit in the young generation is
 * one `Map.get`.
 * @internal
 */
export class RecentMap<K, V> {
  #young = new Map<K, V>()
  #old = new Map<K, V>()
  /** Entries a generation takes before it turns old. */
  readonly #generation: number

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new TypeError('RecentMap: max must be a positive integer')
    this.#generation = max
  }

  /** Entries held (both generations). */
  get size(): number {
    return this.#young.size + this.#old.size
  }

  /** The value of `key`, marking it recently used; `undefined` when it is not held. */
  get(key: K): V | undefined {
    const young = this.#young.get(key)
    if (young !== undefined) return young
    const old = this.#old.get(key)
    if (old === undefined) return undefined
    this.#old.delete(key)
    this.#add(key, old)
    return old
  }

  /** Hold `value` for `key` as the most recently used entry. */
  set(key: K, value: V): void {
    if (this.#young.has(key)) {
      this.#young.set(key, value)
      return
    }
    this.#old.delete(key)
    this.#add(key, value)
  }

  #add(key: K, value: V): void {
    this.#young.set(key, value)
    if (this.#young.size < this.#generation) return
    this.#old = this.#young
    this.#young = new Map()
  }
}
