/**
 * Cache-size child: request resolution on a cache hit with `size` sessions cached. The
 * sessions are loaded through the public path (a signed cookie, a cache miss, a storage read)
 * from a storage that builds records on the fly and keeps nothing. Then, with all of them
 * cached, it times `manager.resolve` for
 * - a hot set: requests for 1024 of the sessions (what a cache lookup costs, flat if O(1));
 * - uniform: requests for sessions picked at random among all `size` (adds the memory
 *   hierarchy: the more sessions, the fewer of them in the CPU caches);
 * and, as floors, `Map.get` on a Map of `size` entries and `get` on an lru-cache configured as the
 * manager's cache (ttl, updateAgeOnGet) holding `size` entries, with keys picked the same ways.
 *
 * Arguments: cached sessions, CPU milliseconds per measurement.
 */
import { LRUCache } from 'lru-cache'
import { do_not_optimize } from 'mitata'
import { generateId } from '../../src/ids.js'
import { reportSection } from '../lib/section.js'
import { fakeRequest, FakeResponse, type FakeRequest } from '../lib/fake-http.js'
import { nsPerOp } from '../lib/measure.js'
import { SyntheticStorage } from '../lib/synthetic-storage.js'
import { libraryManager, signedCookie } from './fixtures.js'

/** Requests in the uniform pool (a power of two). */
const UNIFORM_POOL = 1 << 16
/** Sessions in the hot set (a power of two). */
const HOT_SET = 1 << 10

/** Result of one cache size; times are median ns per operation. */
export interface CacheSizeResult {
  size: number
  hotResolveNs: number
  uniformResolveNs: number
  hotMapGetNs: number
  uniformMapGetNs: number
  hotLruGetNs: number
  /** Seconds it took to load the sessions. */
  fillSeconds: number
  /** Storage reads while measuring (0: every resolution was a cache hit). */
  readsWhileMeasuring: number
  /** Sessions cached when measured. */
  cached: number
}

/**
 * A full collection before each measurement (run with --expose-gc), so no measurement pays for
 * marking a heap that filling it left behind.
 */
function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('run with --expose-gc')
  gc()
}

/** A new string object with the same characters. */
function copy(text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1')
}

reportSection(async (): Promise<CacheSizeResult> => {
  const size = Number(process.argv[2] ?? 10_000)
  const cpuMs = Number(process.argv[3] ?? 500)
  const storage = new SyntheticStorage()
  // Both caches sized for the sessions: the manager's and the identity's verified signatures.
  const manager = libraryManager(storage, { cacheLimit: size, verifiedCacheSize: size })
  const res = new FakeResponse()
  const ids: string[] = []
  const started = performance.now()
  for (let i = 0; i < size; i++) {
    const id = generateId()
    ids.push(id)
    const session = await manager.load(fakeRequest(signedCookie(id)), res)
    if (session.isNew) throw new Error('a session was not loaded from storage')
  }
  const fillSeconds = (performance.now() - started) / 1000
  const pick = (): string => ids[Math.floor(Math.random() * size)]!
  const hotIds = Array.from({ length: HOT_SET }, pick)
  const hot = hotIds.map((id) => fakeRequest(signedCookie(id)))
  const uniform = Array.from({ length: UNIFORM_POOL }, () => fakeRequest(signedCookie(pick())))
  const readsBefore = storage.reads
  const timeResolve = (pool: readonly FakeRequest[]): Promise<number> => {
    const mask = pool.length - 1
    let next = 0
    collectGarbage()
    return nsPerOp(() => do_not_optimize(manager.resolve(pool[next++ & mask]!, res)), cpuMs)
  }
  const hotResolveNs = await timeResolve(hot)
  const uniformResolveNs = await timeResolve(uniform)
  const readsWhileMeasuring = storage.reads - readsBefore
  const cached = manager.stats().cached
  await manager.close()

  const map = new Map<string, object>()
  const lru = new LRUCache<string, object>({ max: size, ttl: 3_600_000, updateAgeOnGet: true })
  for (const id of ids) {
    map.set(id, { id })
    lru.set(id, { id })
  }
  // Keys are copies (other string objects than the Map's own), as ids cut from a Cookie header are.
  const timeGet = (cache: { get(key: string): unknown }, keys: readonly string[]): Promise<number> => {
    const mask = keys.length - 1
    let next = 0
    collectGarbage()
    return nsPerOp(() => do_not_optimize(cache.get(keys[next++ & mask]!)), cpuMs)
  }
  const hotKeys = hotIds.map(copy)
  const hotMapGetNs = await timeGet(map, hotKeys)
  const uniformMapGetNs = await timeGet(
    map,
    Array.from({ length: UNIFORM_POOL }, () => copy(pick())),
  )
  const hotLruGetNs = await timeGet(lru, hotKeys)
  return { size, hotResolveNs, uniformResolveNs, hotMapGetNs, uniformMapGetNs, hotLruGetNs, fillSeconds, readsWhileMeasuring, cached }
})
