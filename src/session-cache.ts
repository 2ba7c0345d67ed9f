import { LRUCache } from 'lru-cache'
import type { SessionState } from './state.js'
import { dataBytes } from './values.js'

/**
 * Bytes a cached session counts for beyond its serialized data under `cacheMaxBytes`: its
 * state object, id and deadlines and its place in the LRU.
 */
export const CACHE_ENTRY_OVERHEAD_BYTES = 512

/** What the cache needs to know of the write queue: which sessions still have writes on the way. */
export interface PendingWrites {
  /** Whether `id` has writes queued or in flight. */
  has(id: string): boolean
  /** Resolves when `id` has none. */
  idle(id: string): Promise<void>
}

/** Options of {@link SessionCache}. */
export interface SessionCacheOptions {
  /** Sessions held in the LRU. */
  readonly limit: number
  /** Bytes the sessions held in the LRU may count for (see {@link CACHE_ENTRY_OVERHEAD_BYTES}); 0 for no such bound. */
  readonly maxBytes?: number
  /** Milliseconds a session stays cached unused. */
  readonly maxAgeMs: number
  /** Milliseconds a revoked id is remembered (the longest a session can live idle). */
  readonly revokedForMs: number
  readonly pending: PendingWrites
  /** Called when a session leaves the LRU (evicted for room or unused too long). */
  readonly onEvict: (id: string) => void
}

/**
 * The sessions this process serves, and the rules that keep that copy consistent with the
 * storage:
 *
 * - a session evicted while its writes are on the way is kept aside ("pinned") until they land,
 *   so a new request still reads them;
 * - an id renewed or destroyed here is remembered as revoked and never loaded again, even if its
 *   storage delete is late or failed;
 * - concurrent loads of one id share one storage read;
 * - a state whose write failed for good is detached: it is never cached again.
 * @internal
 */
export class SessionCache {
  readonly #lru: LRUCache<string, SessionState>
  readonly #pinned = new Map<string, SessionState>()
  readonly #revoked: RecentIds
  /** Revoked ids whose storage delete is not acknowledged yet: never evicted, whatever the traffic (the storage still has them). */
  readonly #unconfirmed = new Set<string>()
  readonly #loading = new Map<string, Promise<SessionState | undefined>>()
  readonly #pending: PendingWrites
  /** Whether the LRU counts bytes (`maxBytes`), so a write that changes a session's size tells it. */
  readonly #sized: boolean

  constructor(options: SessionCacheOptions) {
    this.#pending = options.pending
    const maxBytes = options.maxBytes ?? 0
    this.#sized = maxBytes > 0
    this.#lru = new LRUCache<string, SessionState>({
      max: options.limit,
      ...(this.#sized ? { maxSize: maxBytes, sizeCalculation: (state: SessionState) => sizeOf(state, maxBytes) } : {}),
      ttl: options.maxAgeMs,
      updateAgeOnGet: true,
      dispose: (state, id, reason) => {
        if (reason !== 'evict' && reason !== 'expire') return
        this.#pinWhilePending(state, id)
        options.onEvict(id)
      },
    })
    this.#revoked = new RecentIds(Math.max(options.limit, 1000), Math.max(options.revokedForMs, 1))
  }

  /** Sessions in the LRU. */
  get size(): number {
    return this.#lru.size
  }

  /** What the sessions in the LRU count for under `maxBytes` (0 without that bound). */
  get bytes(): number {
    return this.#lru.calculatedSize
  }

  /** Evicted sessions kept until their pending writes land. */
  get pinnedSize(): number {
    return this.#pinned.size
  }

  /**
   * The cached state of `id`, marking it recently used. A pinned one (evicted with writes on the
   * way) is moved back into the LRU.
   */
  use(id: string): SessionState | undefined {
    const cached = this.#lru.get(id)
    if (cached !== undefined) return cached
    const pinned = this.#pinned.get(id)
    if (pinned !== undefined) {
      this.#pinned.delete(id)
      this.#lru.set(id, pinned)
    }
    return pinned
  }

  /** The cached (or pinned) state of `id`, changing nothing. */
  peek(id: string): SessionState | undefined {
    return this.#lru.peek(id) ?? this.#pinned.get(id)
  }

  /** Cache `state` under its id. */
  add(state: SessionState): void {
    this.#lru.set(state.id, state)
  }

  /**
   * The data of `state` changed (its `bytes` are up to date, or -1): under `maxBytes`, count it
   * at its new size, evicting the least recently used sessions if that goes over. One LRU update
   * per write (two sets: lru-cache counts a size again only when the value it holds changes, so
   * a stand-in goes first), none without the byte bound.
   */
  resized(state: SessionState): void {
    if (!this.#sized || this.#lru.peek(state.id) !== state) return
    this.#lru.set(state.id, RESIZING, { sizeCalculation: () => 1 })
    this.#lru.set(state.id, state)
  }

  /** Drop the cached copy of `id` (it stays in storage; the next request reads it). */
  drop(id: string): void {
    this.#lru.delete(id)
    this.#pinned.delete(id)
  }

  /** Whether `id` was renewed or destroyed here. */
  isRevoked(id: string): boolean {
    return this.#revoked.has(id) || this.#unconfirmed.has(id)
  }

  /**
   * Drop `id` and remember it as revoked: it is never loaded again. Until {@link SessionCache.confirmRevoked}
   * (the storage acknowledged its delete) it is held apart from the bounded memory of revoked ids,
   * so no amount of other renews and destroys can push it out while the storage still has it.
   */
  revoke(id: string): void {
    this.drop(id)
    this.#revoked.add(id)
    this.#unconfirmed.add(id)
  }

  /** The storage acknowledged the delete of revoked `id`: from now on the storage itself refuses it, so it may age out here. */
  confirmRevoked(id: string): void {
    this.#unconfirmed.delete(id)
  }

  /** Revoked ids whose delete the storage has not acknowledged. */
  get unconfirmedRevocations(): number {
    return this.#unconfirmed.size
  }

  /** A new state took the place of the one cached under `oldId` (a renew): cache it under its id and revoke `oldId`. */
  rename(state: SessionState, oldId: string): void {
    this.revoke(oldId)
    this.add(state)
  }

  /**
   * The state a request should write to: the cached object for `state.id` when there is one (a
   * newer load), else `state` itself, cached again if the cache let it go (eviction) while the
   * request held it, so a load racing the write returns it rather than what the storage had
   * before. A destroyed, detached or renewed-away state is never cached again.
   */
  latestOrRecache(state: SessionState): SessionState {
    const cached = this.peek(state.id)
    if (cached !== undefined) return cached
    if (!state.destroyed && !state.detached && !state.renewed) this.add(state)
    return state
  }

  /** The storage no longer has the record of `state` (destroyed or expired elsewhere): mark it destroyed and drop it. */
  markGone(state: SessionState): void {
    state.destroyed = true
    if (this.peek(state.id) === state) this.drop(state.id)
  }

  /** A write of `id` failed for good: its cached copy may show data the storage lacks, so drop it and never cache it again. */
  detach(id: string): void {
    const state = this.peek(id)
    if (state !== undefined) state.detached = true
    this.drop(id)
  }

  /**
   * Load `id` with `read`, sharing one read among concurrent callers. What `read` returns is
   * cached unless the id was revoked meanwhile; if a state for `id` was cached meanwhile, that
   * one is returned instead.
   */
  load(id: string, read: () => Promise<SessionState | undefined>): Promise<SessionState | undefined> {
    let loading = this.#loading.get(id)
    if (loading === undefined) {
      loading = read()
        .then((state) => {
          if (state === undefined || this.isRevoked(id)) return undefined
          const existing = this.use(id)
          if (existing !== undefined) return existing
          this.add(state)
          return state
        })
        .finally(() => this.#loading.delete(id))
      this.#loading.set(id, loading)
    }
    return loading
  }

  /** Drop every cached and pinned session (the storage was replaced). */
  clear(): void {
    this.#lru.clear()
    this.#pinned.clear()
  }

  #pinWhilePending(state: SessionState, id: string): void {
    if (state.destroyed || !this.#pending.has(id)) return
    this.#pinned.set(id, state)
    this.#pending.idle(id).then(
      () => {
        if (this.#pinned.get(id) === state) this.#pinned.delete(id)
      },
      () => {},
    )
  }
}

/**
 * Ids remembered for `ttlMs` after they were last added, at most `max` (past it the one added
 * longest ago is forgotten): what an lru-cache with a ttl, never refreshed on `has`, keeps, in a
 * Map that grows with the ids held rather than arrays allocated for `max` up front (about 44 B
 * per slot of `max`, held whether or not anything is ever revoked).
 */
class RecentIds {
  /** Id → when it was added (`performance.now()`), oldest first. */
  readonly #added = new Map<string, number>()
  readonly #max: number
  readonly #ttlMs: number

  constructor(max: number, ttlMs: number) {
    this.#max = max
    this.#ttlMs = ttlMs
  }

  /** Whether `id` was added less than the ttl ago (and not forgotten since). */
  has(id: string): boolean {
    const added = this.#added.get(id)
    if (added === undefined) return false
    if (performance.now() - added <= this.#ttlMs) return true
    this.#added.delete(id)
    return false
  }

  /** Remember `id` from now on, as the newest. */
  add(id: string): void {
    this.#added.delete(id)
    this.#added.set(id, performance.now())
    if (this.#added.size > this.#max) this.#added.delete(this.#added.keys().next().value!)
  }
}

/** Held for a moment by {@link SessionCache.resized} so that the state set after it is counted anew; never read. */
const RESIZING = Object.freeze({}) as SessionState

/** What `state` counts for under a byte bound of `maxBytes`: its JSON bytes (worked out once, kept on the state) plus the entry's overhead, at most the bound. */
function sizeOf(state: SessionState, maxBytes: number): number {
  if (state.bytes < 0) state.bytes = dataBytes(state.data)
  const size = state.bytes + CACHE_ENTRY_OVERHEAD_BYTES
  return size < maxBytes ? size : maxBytes
}
