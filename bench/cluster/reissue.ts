/**
 * Cluster bench child: the CPU cost of read-your-writes on the write path, in process. One
 * "write cycle" is what a server does for a client that writes: resolve the request from its
 * cookie (a cache hit), `await session.set()`, end the response, and the client keeps the
 * cookies it was sent. On a storage declared shared, every acknowledged write re-issues the
 * cookie with the new version (one signature) and the next request carries a value not seen
 * before (one verification); declared not shared, the cookie never changes. The storage
 * acknowledges at once and keeps nothing, so only the library's work is timed.
 *
 * Arguments: CPU milliseconds per timing; `shared-first` or `unshared-first` (the order alternates over rounds).
 */
import type { StorageCapabilities } from '../../src/types.js'
import { fakeRequest, FakeResponse } from '../lib/fake-http.js'
import { nsPerOp } from '../lib/measure.js'
import { reportSection } from '../lib/section.js'
import { SyntheticStorage } from '../lib/synthetic-storage.js'
import { libraryManager, startLibrarySession } from '../micro/fixtures.js'

/** Nanoseconds per write cycle, and what one cycle sent back. */
export interface ReissueResult {
  sharedNs: number
  unsharedNs: number
  /** Set-Cookie lines per write response. */
  sharedCookies: number
  unsharedCookies: number
  /** Bytes of Set-Cookie values per write response. */
  sharedCookieBytes: number
  unsharedCookieBytes: number
}

/** {@link SyntheticStorage} declared as a storage several processes share. */
class SharedSyntheticStorage extends SyntheticStorage {
  readonly capabilities: StorageCapabilities = { batch: true, admin: true, shared: true }

  versions(ids: readonly string[]): Promise<Map<string, number>> {
    return Promise.resolve(new Map(ids.map((id) => [id, 1])))
  }
}

async function writeCycles(shared: boolean, cpuMs: number): Promise<{ ns: number; cookies: number; bytes: number }> {
  const manager = libraryManager(shared ? new SharedSyntheticStorage() : new SyntheticStorage())
  let cookie = await startLibrarySession(manager)
  let n = 1
  let cycles = 0
  let cookies = 0
  let bytes = 0
  const cycle = async (): Promise<void> => {
    const res = new FakeResponse()
    const session = await manager.load(fakeRequest(cookie, '/write'), res)
    await session.set('n', ++n)
    res.end()
    cycles++
    const lines = res.getHeader('set-cookie')
    if (lines === undefined) return
    const list = Array.isArray(lines) ? lines : [String(lines)]
    cookies += list.length
    for (const line of list) bytes += (line as string).length
    cookie = res.cookie()
  }
  // The session's version must follow the writes, or the bench measures nothing.
  for (let i = 0; i < 100; i++) await cycle()
  if (shared !== /(?:^|; )sid=[^;]+\.\d+(?:;|$)/.test(cookie))
    throw new Error(`the cookie ${shared ? 'does not carry' : 'carries'} a session version: ${cookie}`)
  cycles = cookies = bytes = 0
  const ns = await nsPerOp(cycle, cpuMs)
  await manager.close()
  return { ns, cookies: cookies / cycles, bytes: bytes / cycles }
}

reportSection(async (): Promise<ReissueResult> => {
  const cpuMs = Number(process.argv[2] ?? 500)
  const sharedFirst = process.argv[3] === 'shared-first'
  const first = await writeCycles(sharedFirst, cpuMs)
  const second = await writeCycles(!sharedFirst, cpuMs)
  const [shared, unshared] = sharedFirst ? [first, second] : [second, first]
  return {
    sharedNs: shared.ns,
    unsharedNs: unshared.ns,
    sharedCookies: shared.cookies,
    unsharedCookies: unshared.cookies,
    sharedCookieBytes: shared.bytes,
    unsharedCookieBytes: unshared.bytes,
  }
})
