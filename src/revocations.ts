import { SessionError } from './errors.js'

/** What a revocation was: a destroy, or the old id of a renew. */
export type RevocationKind = 'destroy' | 'renew'

/** Options of {@link Revocations}. */
export interface RevocationsOptions {
  /** Most ids waiting; past it the oldest is given up. */
  readonly max: number
  /** Delete `id` in the storage; resolves once acknowledged, rejects once it failed for good. */
  readonly remove: (id: string) => Promise<unknown>
  /** The storage acknowledged the delete of `id`. */
  readonly confirmed: (id: string, version: number, kind: RevocationKind) => void
  /** `id` is no longer retried (over the bound, or still failing at close). */
  readonly gaveUp: (id: string, error: SessionError) => void
  /** Delay before the first retry round, in ms. Default 1000. */
  readonly firstDelayMs?: number
  /** Longest delay between two rounds, in ms. Default 30_000. */
  readonly maxDelayMs?: number
}

interface Waiting {
  readonly version: number
  readonly kind: RevocationKind
}

/**
 * Ids revoked here (destroyed, or renewed away) whose storage delete failed: the storage still
 * has their records, so another process or a restart would serve them. Each is deleted again in
 * rounds with a growing delay (one second, doubling, at most thirty) until the storage
 * acknowledges, and once more when the manager closes. Bounded: past `max` waiting ids the
 * oldest is given up and reported.
 * @internal
 */
export class Revocations {
  readonly #options: RevocationsOptions
  readonly #waiting = new Map<string, Waiting>()
  readonly #firstDelayMs: number
  readonly #maxDelayMs: number
  #delayMs: number
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> | undefined
  #closed = false

  constructor(options: RevocationsOptions) {
    this.#options = options
    this.#firstDelayMs = options.firstDelayMs ?? 1000
    this.#maxDelayMs = options.maxDelayMs ?? 30_000
    this.#delayMs = this.#firstDelayMs
  }

  /** Ids waiting for their delete to be acknowledged. */
  get size(): number {
    return this.#waiting.size
  }

  /** Whether `id` is waiting (its failures were reported once already). */
  has(id: string): boolean {
    return this.#waiting.has(id)
  }

  /** The delete of revoked `id` failed: retry it until the storage acknowledges. */
  add(id: string, version: number, kind: RevocationKind): void {
    if (this.#closed) {
      this.#options.gaveUp(
        id,
        new SessionError('SESSION_STORAGE_FAILED', 'the storage did not acknowledge the delete of a revoked session before the manager closed'),
      )
      return
    }
    this.#waiting.delete(id)
    this.#waiting.set(id, { version, kind })
    for (const oldest of this.#waiting.keys()) {
      if (this.#waiting.size <= this.#options.max) break
      this.#waiting.delete(oldest)
      this.#options.gaveUp(
        oldest,
        new SessionError(
          'SESSION_STORAGE_FAILED',
          `more than ${this.#options.max} deletes of revoked sessions are waiting for the storage (maxPendingDestroys); the oldest is no longer retried`,
        ),
      )
    }
    this.#schedule()
  }

  /** One last round (the manager is closing): what still fails is given up and reported. */
  async flush(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#round
    if (this.#waiting.size > 0) await this.#retry()
    for (const id of [...this.#waiting.keys()]) {
      this.#waiting.delete(id)
      this.#options.gaveUp(
        id,
        new SessionError('SESSION_STORAGE_FAILED', 'the storage did not acknowledge the delete of a revoked session before the manager closed'),
      )
    }
  }

  #schedule(): void {
    if (this.#closed || this.#timer !== undefined || this.#round !== undefined || this.#waiting.size === 0) return
    const delay = this.#delayMs * (0.75 + Math.random() * 0.5)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#retry().then(() => {
        this.#delayMs = this.#waiting.size === 0 ? this.#firstDelayMs : Math.min(this.#maxDelayMs, this.#delayMs * 2)
        this.#schedule()
      })
    }, delay)
    // A pending retry never keeps the process alive: close() makes the last attempt.
    this.#timer.unref()
  }

  #retry(): Promise<void> {
    const round = Promise.all(
      [...this.#waiting].map(([id, waiting]) =>
        this.#options.remove(id).then(
          () => {
            if (this.#waiting.get(id) !== waiting) return
            this.#waiting.delete(id)
            this.#options.confirmed(id, waiting.version, waiting.kind)
          },
          () => {}, // still failing: the next round tries again
        ),
      ),
    ).then(() => {
      this.#round = undefined
    })
    this.#round = round
    return round
  }
}
