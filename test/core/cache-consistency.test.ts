import test from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { isSessionError } from '../../src/errors.js'
import { SessionManager } from '../../src/session-manager.js'
import { MemoryStorage } from '../../storages/memory.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'
import { visit } from '../helpers/manager.js'

// The cache stays consistent with the storage and with the manager's lifecycle: a write through a
// request that holds an evicted session is never hidden by a copy loaded at the same moment,
// destroy() after close() fails like every other write, and a session another process kept alive
// is not dropped as expired because of an old cached copy.

test('a write through a request that still holds an evicted session is not hidden by a copy loaded at the same moment', async (t) => {
  // cacheLimit 1: creating a second session evicts the first (it has no pending write, so it is not pinned).
  const storage = new MemoryStorage()
  const manager = new SessionManager({ storage, identities: [new CookieIdentity()], cacheLimit: 1 })
  const first = await visit(manager)
  await first.session.set('n', 0)
  const holder = await visit(manager, first.cookie) // a long request that holds the session
  const other = await visit(manager)
  await other.session.set('n', 0) // evicts the first session
  t.is(manager.stats().pinned, 0)

  // Another request of the same session misses the cache and reads the storage; while that read
  // is in flight the long request writes. The read started before the write was queued, so it
  // returns the old record, which #read caches (session-manager.ts: #read only waits for
  // pending writes before it starts, and #lookup cannot see the holder's orphaned state).
  const loading = manager.load(fakeRequest({ cookie: first.cookie }), new FakeResponse())
  const write = holder.session.set('n', 1)
  await write
  await loading
  t.is((await storage.get(first.session.id))!.data['n'], 1, 'the acknowledged write is in storage')
  const next = await visit(manager, first.cookie)
  t.is(next.session.get('n'), 1, 'so the next request must see it, not a stale cached copy')
})

test('destroy() after close() fails with SESSION_CLOSED, like every other write', async (t) => {
  const manager = new SessionManager({ storage: new MemoryStorage(), identities: [new CookieIdentity()], writeRetries: 0 })
  const { session } = await visit(manager)
  await session.set('n', 1)
  await manager.close()
  const errors: Error[] = []
  manager.on('error', (error) => errors.push(error))
  const code = await session.destroy().then(
    () => 'ok',
    (error: unknown) => (isSessionError(error) ? error.code : String(error)),
  )
  // Today: the delete is queued on the closed storage and fails as SESSION_STORAGE_FAILED
  // (after the retries), and an 'error' is emitted for it (session.ts #destroy has no
  // assertWritable check).
  t.is(code, 'SESSION_CLOSED')
  t.deepEqual(errors, [])
})

test('a session that another process kept alive is not dropped as expired when it comes back to a process with an old cached copy', async (t) => {
  // Two processes on one storage, one clock; maxAge shorter than cacheMaxAge (allowed, e.g. a
  // 30-minute idle timeout with the default one-hour cache).
  const clock = { now: Date.now() }
  const storage = new MemoryStorage({ now: () => clock.now })
  const options = { storage, identities: [new CookieIdentity()], maxAge: 100, touchAfter: 10, cacheMaxAge: 3600, now: () => clock.now }
  const first = new SessionManager(options)
  const second = new SessionManager(options)
  const created = await visit(first)
  await created.session.set('user', 'ada') // idle deadline in first's cache: +100 s

  clock.now += 50_000
  const failover = await visit(second, created.cookie) // the balancer moved the user: loaded, touched to +150 s
  t.is(failover.session.get('user'), 'ada')
  for (let turn = 0; turn < 100 && second.stats().pendingWrites > 0; turn++) await new Promise((resolve) => setImmediate(resolve))
  t.is(second.stats().pendingWrites, 0, 'its touch landed')

  clock.now += 70_000 // +120 s: live in storage (deadline +150 s), expired by first's cached copy (+100 s)
  t.truthy(await storage.get(created.session.id), 'the storage holds a live session')
  const back = await visit(first, created.cookie)
  // Today #alive (session-manager.ts) treats the stale cached deadline as final: it emits
  // 'expire', forgets the session and starts a new, empty one instead of asking the storage.
  t.is(back.session.get('user'), 'ada')
})
