import test from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { isSessionError } from '../../src/errors.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import { MemoryStorage } from '../../storages/memory.js'
import { Browser, fakeRequest, FakeResponse } from '../helpers/fake-http.js'
import { FaultStorage } from '../helpers/storage-double.js'

// Races between a pending write and eviction, renew and destroy. The storage is held so the
// write is provably pending (queued or in flight) while the other operation happens.

function setup(options: SessionManagerOptions = {}, storage = new FaultStorage(new MemoryStorage())) {
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })], writeRetries: 1, retryDelay: 1, ...options })
  return { storage, manager }
}

async function started(manager: SessionManager, data: Record<string, number> = { n: 0 }): Promise<{ browser: Browser; session: Session }> {
  const browser = new Browser()
  const { result: session } = await browser.request(manager, async (s) => {
    for (const [key, value] of Object.entries(data)) await s.set(key, value)
    return s
  })
  return { browser, session }
}

/** The outcome code of a settled write: 'ok' or the SessionError code. */
async function outcome(write: Promise<void>): Promise<string> {
  try {
    await write
    return 'ok'
  } catch (error) {
    return isSessionError(error) ? error.code : `unexpected: ${String(error)}`
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

// ---- eviction ----

test('eviction while a write is pending: the evicted session is still served from memory, with its write, and the write lands', async (t) => {
  const { storage, manager } = setup({ cacheLimit: 2 })
  const a = await started(manager)
  storage.hold()
  const write = a.session.set('n', 1)
  // Two new sessions push A out of the 2-entry cache while its write is held.
  const b = new Browser()
  const c = new Browser()
  const pendingB = b.request(manager, (s) => s.set('n', 0))
  const pendingC = c.request(manager, (s) => s.set('n', 0))
  await tick()
  t.true(manager.stats().pinned >= 1, 'A was evicted but kept while its write is pending')
  const reads = storage.reads
  const { result } = await a.browser.request(manager, (s) => s.get('n'))
  t.is(result, 1, 'a request for A sees its pending write, not a stale copy')
  t.is(storage.reads, reads, 'and costs no storage read')
  storage.release()
  await Promise.all([write, pendingB, pendingC])
  t.is((await storage.inner.get(a.session.id))?.data['n'], 1)
})

test('eviction while a write is pending that then fails: the next request reloads what storage holds', async (t) => {
  const { storage, manager } = setup({ cacheLimit: 1 })
  const a = await started(manager)
  storage.hold()
  const write = a.session.set('n', 1)
  const other = new Browser().request(manager, (s) => s.set('n', 0))
  await tick()
  storage.down()
  storage.release()
  t.is(await outcome(write), 'SESSION_STORAGE_FAILED')
  await other.catch(() => undefined)
  storage.up()
  const { result } = await a.browser.request(manager, (s) => s.get('n'))
  t.is(result, 0)
  t.is(manager.stats().pinned, 0)
})

test('eviction of many sessions with pending writes: every write lands and nothing stays pinned', async (t) => {
  const { storage, manager } = setup({ cacheLimit: 5 })
  const list = []
  for (let i = 0; i < 30; i++) list.push(await started(manager))
  storage.slow(5)
  await Promise.all(list.map(({ session }, i) => session.set('n', i + 1)))
  for (const [i, { session }] of list.entries()) t.is((await storage.inner.get(session.id))?.data['n'], i + 1)
  t.is(manager.stats().pinned, 0)
})

// ---- renew ----

test('renew racing an in-flight write: the data lives on under the new id, the old id is gone', async (t) => {
  const { storage, manager } = setup()
  const { browser, session } = await started(manager)
  const oldId = session.id
  storage.hold()
  const write = session.set('n', 1)
  await tick()
  const renew = session.renew()
  storage.release()
  t.deepEqual(await Promise.all([outcome(write), outcome(renew)]), ['ok', 'ok'])
  t.not(session.id, oldId)
  t.is(await storage.inner.get(oldId), undefined)
  t.is((await storage.inner.get(session.id))?.data['n'], 1)
  const renewed = await manager.load(fakeRequest({ cookie: `sid=${session.id}` }), new FakeResponse())
  t.is(renewed.get('n'), 1)
  const { result: replay } = await browser.request(manager, (s) => s)
  t.true(replay.isNew, 'the old cookie opens nothing')
})

test('renew racing queued writes of another request of the same session: nothing lands under the old id, and that request cannot write after the renew', async (t) => {
  const { storage, manager } = setup()
  const { browser, session } = await started(manager)
  const oldId = session.id
  // A second concurrent request of the same browser holds the same session.
  const { result: other } = await browser.request(manager, (s) => s)
  storage.hold()
  const first = session.set('a', 1)
  await tick()
  const queued = other.set('b', 2)
  const renew = session.renew()
  const after = other.set('c', 3)
  storage.release()
  // The other request came in with the old id: what it wrote before the renew is carried over,
  // a write after it is refused (it must not reach the session under an id it never had).
  t.deepEqual(await Promise.all([outcome(first), outcome(queued), outcome(renew), outcome(after)]), ['ok', 'ok', 'ok', 'SESSION_RENEWED'])
  t.is(other.id, oldId)
  t.is(await storage.inner.get(oldId), undefined, 'the old id is not resurrected by a write queued behind the renew')
  t.deepEqual((await storage.inner.get(session.id))?.data, { n: 0, a: 1, b: 2 })
  t.is(storage.applied.filter((op) => op.id === oldId).at(-1)?.type, 'delete', 'the last write to the old id is its delete')
})

test('renew twice while the first is pending: only the newest id survives', async (t) => {
  const { storage, manager } = setup()
  const { session } = await started(manager)
  const ids = [session.id]
  storage.hold()
  const first = session.renew()
  ids.push(session.id)
  const second = session.renew()
  ids.push(session.id)
  storage.release()
  await Promise.all([first, second])
  t.is(await storage.inner.get(ids[0]!), undefined)
  t.is(await storage.inner.get(ids[1]!), undefined)
  t.truthy(await storage.inner.get(ids[2]!))
})

test('the old id of a renewed session opens nothing, even before its delete lands', async (t) => {
  const { storage, manager } = setup()
  const { session } = await started(manager)
  const oldId = session.id
  storage.hold()
  const renew = session.renew()
  const replay = await manager.load(fakeRequest({ cookie: `sid=${oldId}` }), new FakeResponse())
  t.true(replay.isNew)
  t.is(storage.reads, 0)
  storage.release()
  await renew
})

// ---- destroy ----

test('destroy racing an in-flight write: the session does not come back', async (t) => {
  const { storage, manager } = setup()
  const { browser, session } = await started(manager)
  const id = session.id
  storage.hold()
  const write = session.set('n', 1)
  await tick()
  const destroy = session.destroy()
  storage.release()
  const outcomes = await Promise.all([outcome(write), outcome(destroy)])
  t.is(outcomes[1], 'ok')
  t.true(['ok', 'SESSION_DESTROYED'].includes(outcomes[0]))
  t.is(await storage.inner.get(id), undefined)
  const { result } = await browser.request(manager, (s) => s)
  t.true(result.isNew)
})

test('destroy racing a queued write: the write is refused with SESSION_DESTROYED and never sent', async (t) => {
  const { storage, manager } = setup()
  const { session } = await started(manager)
  const id = session.id
  storage.hold()
  const inflight = session.set('a', 1)
  await tick()
  const queued = session.set('b', 2)
  const destroy = session.destroy()
  storage.release()
  t.deepEqual(await Promise.all([outcome(inflight), outcome(queued), outcome(destroy)]), ['ok', 'SESSION_DESTROYED', 'ok'])
  t.is(await storage.inner.get(id), undefined)
  t.false(storage.applied.some((op) => op.id === id && op.type === 'update' && op.key === 'b'))
})

test('destroy racing the first write of a new session: nothing is left', async (t) => {
  const { storage, manager } = setup()
  const res = new FakeResponse()
  const session = await manager.load(fakeRequest(), res)
  storage.hold()
  const create = session.set('n', 1)
  const id = session.id
  await tick()
  const destroy = session.destroy()
  storage.release()
  await Promise.all([outcome(create), destroy])
  t.is(await storage.inner.get(id), undefined)
  t.is(await storage.inner.length(), 0)
})

test('a write from another request after destroy is refused and sends nothing', async (t) => {
  const { storage, manager } = setup()
  const { browser, session } = await started(manager)
  const { result: other } = await browser.request(manager, (s) => s)
  await session.destroy()
  const writes = storage.writes
  for (const write of [other.set('n', 9), other.remove('n'), other.clear(), other.renew()]) t.is(await outcome(write), 'SESSION_DESTROYED')
  t.is(storage.writes, writes)
  t.is(await storage.inner.length(), 0)
})

test('destroy during an outage: the id is revoked here at once, and its delete is retried', async (t) => {
  const { storage, manager } = setup({ writeRetries: 3 })
  const { browser, session } = await started(manager)
  storage.flap(0, 2)
  const destroy = session.destroy()
  const { result } = await browser.request(manager, (s) => s)
  t.true(result.isNew, 'the destroyed session is not served while its delete is retried')
  storage.up()
  t.is(await outcome(destroy), 'ok')
  t.is(await storage.inner.get(session.id), undefined)
})

// ---- two processes on one storage ----

test('destroyed in one process: a write in another that still caches it does not bring it back', async (t) => {
  const storage = new FaultStorage(new MemoryStorage())
  const one = setup({}, storage).manager
  const two = setup({}, storage).manager
  const { browser, session } = await started(one)
  const { result: there } = await browser.request(two, (s) => s)
  t.is(there.get('n'), 0)
  await session.destroy()
  t.is(await outcome(there.set('n', 1)), 'SESSION_DESTROYED')
  t.is(await outcome(there.remove('n')), 'SESSION_DESTROYED')
  t.is(await storage.inner.get(session.id), undefined)
  const { result } = await browser.request(two, (s) => s)
  t.true(result.isNew, 'the other process forgot it too')
})

test('destroyed in one process: clear() in another that still caches it does not bring the id back', async (t) => {
  const storage = new FaultStorage(new MemoryStorage())
  const one = setup({}, storage).manager
  const two = setup({}, storage).manager
  const { browser, session } = await started(one)
  const { result: there } = await browser.request(two, (s) => s)
  await session.destroy()
  await outcome(there.clear())
  t.is(await storage.inner.get(session.id), undefined, 'a destroyed (logged-out) id must not become valid again')
})
