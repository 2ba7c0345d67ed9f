import type { InvalidationBus, InvalidationBusStats, InvalidationMessage } from './bus.js'
import type { PendingWrites, SessionCache } from './session-cache.js'
import type { SessionState } from './state.js'
import type { Storage } from './types.js'

/** Serve the cached copy as it is. */
export const TRUSTED = 0
/** Ask the storage for the record's version first; reload if it moved. */
export const PROBE = 1
/** The client holds a newer version than the cached copy: read the record again before serving. */
export const RELOAD = 2
/** What {@link Coherence.check} says of a cached session. */
export type Check = typeof TRUSTED | typeof PROBE | typeof RELOAD

/** Longest a destroy or renew waits for the bus to acknowledge its message (a bus that is down costs this, never a failure). */
export const REVOCATION_FLUSH_MS = 100

function noop(): void {}

/** Most ids in one `versions` call. */
const PROBE_BATCH = 100

/** Counters of the cross-process checks, part of `manager.stats()`. */
export interface CoherenceStats {
  /** Cached sessions whose version was checked with the storage before being served. */
  probed: number
  /** Storage calls those checks made (concurrent checks share one). */
  probeCalls: number
  /** Checks that failed (the cached copy was served as last validated). */
  probeErrors: number
  /** Cached copies found older than the storage's (by a check, the client's version or the bus) and read again. */
  staleReloads: number
  /** Cached copies dropped because the storage no longer has the session (destroyed or renewed elsewhere). */
  revokedElsewhere: number
  /** The invalidation bus's counters, when there is one. */
  bus: InvalidationBusStats | undefined
}

/** Settings of {@link Coherence}. */
export interface CoherenceOptions {
  readonly cache: SessionCache
  readonly pending: PendingWrites
  readonly now: () => number
  /** Milliseconds a cached copy is served without a check; `Infinity`: never checked. */
  readonly trustMs: number
  readonly bus: InvalidationBus | undefined
  /** Reports a failed check (the manager's `error` event). */
  readonly onError: (error: unknown) => void
}

/**
 * What keeps this process's cache agreeing with the other processes that share the storage:
 * which cached copies may be served as they are, the version checks ("probes") of the others,
 * batched across sessions, and the invalidation bus, whose messages drop copies that another
 * process made stale. The storage stays the source of truth: a message never does more than
 * make this process read it again.
 * @internal
 */
export class Coherence {
  readonly stats: Omit<CoherenceStats, 'bus'> = { probed: 0, probeCalls: 0, probeErrors: 0, staleReloads: 0, revokedElsewhere: 0 }
  readonly #cache: SessionCache
  readonly #pending: PendingWrites
  readonly #now: () => number
  readonly #trustMs: number
  readonly #bus: InvalidationBus | undefined
  readonly #unsubscribe: (() => void) | undefined
  readonly #onError: (error: unknown) => void
  /** Copies validated before this instant are checked before they are served (the bus missed messages). */
  #distrustBefore = 0
  /** Probes waiting for the next batch, and the ones in flight, by id. */
  readonly #probing = new Map<string, Promise<number | undefined>>()
  #batch: Array<{ id: string; resolve: (version: number | undefined) => void; reject: (error: unknown) => void }> = []
  #storage: Storage

  constructor(storage: Storage, options: CoherenceOptions) {
    this.#storage = storage
    this.#cache = options.cache
    this.#pending = options.pending
    this.#now = options.now
    this.#trustMs = options.trustMs
    this.#bus = options.bus
    this.#onError = options.onError
    this.#unsubscribe = options.bus?.subscribe({
      onMessage: (message) => this.#received(message),
      onGap: () => {
        this.#distrustBefore = this.#now()
      },
    })
  }

  /** Use `storage` from now on (the manager's storage was replaced). */
  set storage(storage: Storage) {
    this.#storage = storage
  }

  /**
   * Whether the cached `state` can be served at `now` to a client that holds `clientVersion`
   * of it (`undefined` when its credential carries none); `fresh` asks for a check whatever the
   * copy's age. A copy with writes on the way is served as it is: it is ahead of the storage,
   * and its conditional writes will meet any newer version.
   */
  check(state: SessionState, clientVersion: number | undefined, now: number, fresh: boolean): Check {
    if (clientVersion !== undefined && clientVersion > state.version && !this.#pending.has(state.id)) return RELOAD
    if (!fresh && (this.#trustMs === Infinity || (now - state.validatedAt < this.#trustMs && state.validatedAt >= this.#distrustBefore))) return TRUSTED
    return this.#pending.has(state.id) ? TRUSTED : PROBE
  }

  /**
   * The version of `id`'s live record in storage, or `undefined` when there is none. Checks of
   * many sessions made in the same turn of the event loop share one `versions` call; checks of
   * one id share one answer. Rejects when the storage cannot answer.
   */
  probe(id: string): Promise<number | undefined> {
    let probing = this.#probing.get(id)
    if (probing !== undefined) return probing
    probing = new Promise<number | undefined>((resolve, reject) => {
      if (this.#batch.length === 0) setImmediate(() => this.#send())
      this.#batch.push({ id, resolve, reject })
    })
    this.#probing.set(id, probing)
    const forget = (): void => {
      if (this.#probing.get(id) === probing) this.#probing.delete(id)
    }
    probing.then(forget, forget)
    this.stats.probed++
    return probing
  }

  /**
   * Publish an acknowledged change to the other processes (no-op without a bus). For a destroy
   * or renew, the promise of the transport's acknowledgement, bounded by
   * {@link REVOCATION_FLUSH_MS}: the caller's promise settles after it, so the other processes
   * hold the message before the client can replay the old id.
   */
  publish(id: string, version: number, kind: 'write' | 'destroy' | 'renew'): Promise<void> | undefined {
    if (this.#bus === undefined) return undefined
    try {
      this.#bus.publish({ id, version, kind })
      if (kind !== 'write' && typeof this.#bus.flush === 'function') return this.#bus.flush(REVOCATION_FLUSH_MS).catch(noop)
    } catch (err) {
      this.#onError(err)
    }
    return undefined
  }

  busStats(): InvalidationBusStats | undefined {
    return this.#bus?.stats()
  }

  /** Stop listening to the bus (the manager is closing; the bus is the caller's to close). */
  close(): void {
    this.#unsubscribe?.()
  }

  #send(): void {
    const batch = this.#batch
    this.#batch = []
    for (let start = 0; start < batch.length; start += PROBE_BATCH) {
      const chunk = batch.slice(start, start + PROBE_BATCH)
      this.stats.probeCalls++
      let asked: Promise<Map<string, number>>
      try {
        asked = this.#versions(chunk.map((probe) => probe.id))
      } catch (err) {
        asked = Promise.reject(err)
      }
      asked.then(
        (versions) => {
          for (const probe of chunk) probe.resolve(versions.get(probe.id))
        },
        (err: unknown) => {
          this.stats.probeErrors += chunk.length
          for (const probe of chunk) probe.reject(err)
        },
      )
    }
  }

  /** The storage's `versions`, or one `get` per id for a storage that has none. */
  async #versions(ids: string[]): Promise<Map<string, number>> {
    const storage = this.#storage
    if (typeof storage.versions === 'function') return storage.versions(ids)
    const records = await Promise.all(ids.map((id) => storage.get(id)))
    const versions = new Map<string, number>()
    records.forEach((record, index) => {
      if (record !== undefined && record !== null) versions.set(ids[index]!, record.version)
    })
    return versions
  }

  #received(message: InvalidationMessage): void {
    const state = this.#cache.peek(message.id)
    if (state === undefined || state.id !== message.id) return
    if (message.kind === 'write') {
      if (state.version >= message.version) return
      this.stats.staleReloads++
    } else {
      this.stats.revokedElsewhere++
    }
    // Dropped, not changed: the next request reads the storage, the source of truth (after
    // this process's own pending writes of it, if any, have landed).
    this.#cache.drop(message.id)
  }
}
