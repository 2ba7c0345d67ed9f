/**
 * Runs work that needs some sessions (or the whole store) to itself, for backends that read
 * before they write (LevelDB, an express-session store). Waiting is in arrival order per id,
 * and a call registers for all its ids at once, so calls never deadlock.
 *
 * @example
 * ```ts
 * const locks = new KeyedLock()
 * await locks.run([id], async () => write(await read(id)))
 * ```
 */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>()
  #wholeStore: Promise<void> = Promise.resolve()

  /** Run `work` once every earlier call on any of `ids` (and every earlier {@link KeyedLock.runAlone}) has settled. */
  async run<T>(ids: readonly string[], work: () => Promise<T>): Promise<T> {
    const before: Array<Promise<void>> = [this.#wholeStore]
    for (const id of ids) {
      const tail = this.#tails.get(id)
      if (tail !== undefined) before.push(tail)
    }
    const { promise: done, resolve: release } = withResolvers()
    for (const id of ids) this.#tails.set(id, done)
    try {
      await Promise.all(before)
      return await work()
    } finally {
      release()
      for (const id of ids) if (this.#tails.get(id) === done) this.#tails.delete(id)
    }
  }

  /** Run `work` once every earlier call has settled; later calls wait for it. */
  async runAlone<T>(work: () => Promise<T>): Promise<T> {
    const before = [this.#wholeStore, ...this.#tails.values()]
    const { promise: done, resolve: release } = withResolvers()
    this.#wholeStore = done
    try {
      await Promise.all(before)
      return await work()
    } finally {
      release()
    }
  }
}

function withResolvers(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}
