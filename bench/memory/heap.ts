/**
 * Memory child (run with --expose-gc): heap bytes per cached session holding ~1 KB of JSON.
 * One variant per process: this library's cache (sessions loaded through the public path from
 * a storage that keeps nothing, so only the cache is counted), express-session's MemoryStore,
 * or a plain Map of parsed objects. Every variant keeps its own copy of each id.
 *
 * Arguments: variant (`library` | `library-unsigned` | `express-session` | `map`), sessions.
 */
import session from 'express-session'
import { CookieIdentity } from '../../identities/cookie.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import { reportSection } from '../lib/section.js'
import { fakeRequest, FakeResponse } from '../lib/fake-http.js'
import { sessionJson } from '../lib/session-data.js'
import { SyntheticStorage } from '../lib/synthetic-storage.js'
import { COOKIE_NAME, libraryManager, signedCookie } from '../micro/fixtures.js'

/** What one variant measured. */
export interface HeapResult {
  variant: string
  sessions: number
  /** Mean bytes of JSON per session. */
  jsonBytes: number
  /** `heapUsed` growth per session after a full GC. */
  heapPerSession: number
  /** `heapUsed + arrayBuffers` growth per session (lru-cache keeps its lists in typed arrays). */
  totalPerSession: number
  /** Sessions the structure held at the end (checks nothing was evicted). */
  held: number
}

const gc = (globalThis as { gc?: () => void }).gc

function settle(): { heap: number; total: number } {
  if (gc === undefined) throw new Error('run with --expose-gc')
  for (let i = 0; i < 4; i++) gc()
  const usage = process.memoryUsage()
  return { heap: usage.heapUsed, total: usage.heapUsed + usage.arrayBuffers }
}

async function fillLibrary(sessions: number, signed: boolean): Promise<{ held: number; keep: unknown }> {
  let current = 0
  const storage = new SyntheticStorage({ makeJson: () => sessionJson(current) })
  const cacheLimit = Math.max(sessions, 100_000)
  const manager = signed
    ? libraryManager(storage, { cacheLimit, verifiedCacheSize: cacheLimit })
    : new SessionManager({ storage, cacheLimit, identities: [new CookieIdentity({ name: COOKIE_NAME })] })
  const res = new FakeResponse()
  for (current = 0; current < sessions; current++) {
    const id = generateId()
    const loaded = await manager.load(fakeRequest(signed ? signedCookie(id) : `${COOKIE_NAME}=${id}`), res)
    if (loaded.isNew) throw new Error('a session was not loaded')
  }
  return { held: manager.stats().cached, keep: manager }
}

async function fillExpressSession(sessions: number): Promise<{ held: number; keep: unknown }> {
  const store = new session.MemoryStore()
  const set = (id: string, data: session.SessionData): Promise<void> =>
    new Promise((resolve, reject) => store.set(id, data, (err?: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve())))
  for (let i = 0; i < sessions; i++) {
    // What express-session hands its store: the data plus its cookie object.
    const data = {
      cookie: { originalMaxAge: 1_209_600_000, expires: new Date(Date.now() + 1_209_600_000), httpOnly: true, path: '/' },
      ...(JSON.parse(sessionJson(i)) as object),
    }
    await set(generateId(), data)
  }
  const held = await new Promise<number>((resolve, reject) =>
    store.length((err: unknown, length?: number) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(length ?? 0))),
  )
  return { held, keep: store }
}

function fillMap(sessions: number): { held: number; keep: unknown } {
  const map = new Map<string, unknown>()
  for (let i = 0; i < sessions; i++) map.set(generateId(), JSON.parse(sessionJson(i)))
  return { held: map.size, keep: map }
}

reportSection(async (): Promise<HeapResult> => {
  const variant = process.argv[2] ?? 'library'
  const sessions = Number(process.argv[3] ?? 100_000)
  let sampled = 0
  let jsonBytes = 0
  for (let i = 0; i < sessions; i += Math.max(1, Math.floor(sessions / 1000)), sampled++) jsonBytes += sessionJson(i).length
  jsonBytes /= sampled
  const fills: Record<string, () => Promise<{ held: number; keep: unknown }> | { held: number; keep: unknown }> = {
    library: () => fillLibrary(sessions, true),
    'library-unsigned': () => fillLibrary(sessions, false),
    'express-session': () => fillExpressSession(sessions),
    map: () => fillMap(sessions),
  }
  const fill = fills[variant]
  if (fill === undefined) throw new Error(`unknown variant ${variant}`)
  const before = settle()
  const filled = await fill()
  const after = settle()
  // Keep the structure alive until measured.
  if (filled.keep === null) throw new Error('unreachable')
  return {
    variant,
    sessions,
    jsonBytes,
    heapPerSession: (after.heap - before.heap) / sessions,
    totalPerSession: (after.total - before.total) / sessions,
    held: filled.held,
  }
})
