// Two managers on one storage are two processes of a cluster: each has its own cache, and a
// client moves between them as a load balancer without affinity (or one failing over and back)
// would move it. What must hold: a client never reads an older copy of its own acknowledged
// writes, no acknowledged write is reverted or lost, an update(fn) is never lost to another
// process's write, and a logout or renew on one process holds on the other within
// trustCacheFor (at once with a bus, or with a fresh load).
import test from 'ava'
import { setTimeout as delay } from 'node:timers/promises'
import { MemoryBus, MemoryBusNetwork } from '../../buses/memory.js'
import { CookieIdentity } from '../../identities/cookie.js'
import { MemoryStorage } from '../../storages/memory.js'
import { isSessionError } from '../../src/errors.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import type { SessionData, Storage } from '../../src/types.js'
import { Browser, FakeResponse, fakeRequest } from '../helpers/fake-http.js'
import { TEST_KEY } from '../helpers/manager.js'

/** One MemoryStorage that declares itself shared: what several processes on one database see. */
function sharedStorage(): MemoryStorage {
  const storage = new MemoryStorage()
  Object.defineProperty(storage, 'capabilities', { value: { ...storage.capabilities, shared: true } })
  return storage
}

interface Cluster {
  readonly a: SessionManager
  readonly b: SessionManager
  readonly storage: Storage
  readonly clock: { now: number }
  readonly close: () => Promise<void>
}

function cluster(options: SessionManagerOptions = {}, perNode: (node: 'a' | 'b') => SessionManagerOptions = () => ({})): Cluster {
  const storage = sharedStorage()
  const clock = { now: Date.now() }
  const make = (node: 'a' | 'b'): SessionManager =>
    new SessionManager({ storage, identities: [new CookieIdentity({ keys: [TEST_KEY] })], now: () => clock.now, ...options, ...perNode(node) })
  const a = make('a')
  const b = make('b')
  // One storage, two managers: close the storage once, after both.
  const closeStorage = storage.close.bind(storage)
  storage.close = () => Promise.resolve()
  return {
    a,
    b,
    storage,
    clock,
    close: async () => {
      await Promise.all([a.close(), b.close()])
      await closeStorage()
    },
  }
}

const read = (key: string) => (session: Session) => session.get(key)

test('fail-back: a process that cached an older copy reads the client’s newer write made elsewhere, without waiting for trustCacheFor', async (t) => {
  const { a, b, close } = cluster({ trustCacheFor: 3600 })
  try {
    const browser = new Browser()
    await browser.request(a, (s) => s.set('x', 1))
    await browser.request(b, (s) => s.set('x', 2))
    t.is((await browser.request(a, read('x'))).result, 2)
    t.is(a.stats().staleReloads, 1, 'a saw from the cookie that its copy was older and read the storage again')
    await browser.request(a, (s) => s.set('y', 'on a'))
    const onB = await browser.request(b, (s) => s.getAll())
    t.deepEqual(onB.result, { x: 2, y: 'on a' })
  } finally {
    await close()
  }
})

test('interleaved writes of different keys on two processes: both keep every key, none reverted', async (t) => {
  const { a, b, storage, close } = cluster({ trustCacheFor: 3600 })
  try {
    const created = new FakeResponse()
    const first = await a.load(fakeRequest(), created)
    await first.set('seed', 0)
    const cookie = created.cookieHeader()
    const onA = await a.load(fakeRequest({ cookie }), new FakeResponse())
    const onB = await b.load(fakeRequest({ cookie }), new FakeResponse())
    const writes: Array<Promise<void>> = []
    for (let i = 0; i < 20; i++) writes.push(onA.set(`a${i}`, i), onB.set(`b${i}`, i))
    await Promise.all(writes)
    const expected: SessionData = { seed: 0 }
    for (let i = 0; i < 20; i++) Object.assign(expected, { [`a${i}`]: i, [`b${i}`]: i })
    t.deepEqual((await storage.get(first.id))?.data, expected)
    t.true(a.stats().conflicts + b.stats().conflicts > 0, 'the second writer met the first one’s version and rebased')
    // Each process's copy now shows the other's keys as well: a conflict rebased it on the storage's record.
    const afterA = await a.load(fakeRequest({ cookie }), new FakeResponse(), { fresh: true })
    const afterB = await b.load(fakeRequest({ cookie }), new FakeResponse(), { fresh: true })
    t.deepEqual(afterA.getAll(), expected)
    t.deepEqual(afterB.getAll(), expected)
  } finally {
    await close()
  }
})

test('session.update: increments from both processes at the same time are never lost', async (t) => {
  const { a, b, storage, close } = cluster({ trustCacheFor: 3600 })
  try {
    const created = new FakeResponse()
    const first = await a.load(fakeRequest(), created)
    await first.set('n', 0)
    const cookie = created.cookieHeader()
    const onA = await a.load(fakeRequest({ cookie }), new FakeResponse())
    const onB = await b.load(fakeRequest({ cookie }), new FakeResponse())
    const increments: Array<Promise<number>> = []
    for (let i = 0; i < 25; i++) {
      increments.push(onA.update('n', (n) => Number(n ?? 0) + 1) as Promise<number>)
      increments.push(onB.update('n', (n) => Number(n ?? 0) + 1) as Promise<number>)
    }
    const values = await Promise.all(increments)
    t.is((await storage.get(first.id))?.data['n'], 50)
    t.is(Math.max(...values), 50, 'the last acknowledged increment resolved with the stored value')
    t.true(a.stats().conflicts + b.stats().conflicts > 0)
  } finally {
    await close()
  }
})

test('session.update: a client alternating between processes counts every acknowledged increment', async (t) => {
  const { a, b, storage, close } = cluster()
  try {
    const browser = new Browser()
    const seen: number[] = []
    for (let i = 0; i < 12; i++) {
      const node = i % 3 === 2 ? b : a
      seen.push((await browser.request(node, (s) => s.update('visits', (n) => Number(n ?? 0) + 1))).result as number)
    }
    t.deepEqual(
      seen,
      Array.from({ length: 12 }, (_, i) => i + 1),
    )
    const id = (await browser.request(a, (s) => s.id)).result
    t.is((await storage.get(id))?.data['visits'], 12)
  } finally {
    await close()
  }
})

test('session.update: the function runs again on the fresh value, and its error gives the write up', async (t) => {
  const { a, b, storage, close } = cluster({ trustCacheFor: 3600 })
  try {
    const created = new FakeResponse()
    const first = await a.load(fakeRequest(), created)
    await first.set('n', 1)
    const cookie = created.cookieHeader()
    const onA = await a.load(fakeRequest({ cookie }), new FakeResponse())
    const onB = await b.load(fakeRequest({ cookie }), new FakeResponse())
    await onB.set('n', 100)
    const seen: unknown[] = []
    const stored = await onA.update('n', (n) => {
      seen.push(n)
      return Number(n) + 1
    })
    t.deepEqual(seen, [1, 100], 'first on the cached value, then on the one stored elsewhere')
    t.is(stored, 101)
    t.is(onA.get('n'), 101)

    await onB.set('n', 5)
    const refused = onA.update('n', (n) => {
      if (n === 5) throw new Error('not on five')
      return Number(n) + 1
    })
    const error = await t.throwsAsync(refused)
    t.is(error?.message, 'not on five')
    t.is((await storage.get(first.id))?.data['n'], 5, 'nothing of the refused update was stored')
    await t.throwsAsync(onA.update('n', 'not a function' as never), { instanceOf: TypeError })
  } finally {
    await close()
  }
})

test('logout on one process: the old cookie is refused on the other once trustCacheFor has passed, at once with fresh', async (t) => {
  const { a, b, clock, close } = cluster({ trustCacheFor: 2 })
  try {
    const browser = new Browser()
    await browser.request(a, (s) => s.set('user', 'alice'))
    const stolen = browser.cookie
    t.is((await browser.request(b, read('user'))).result, 'alice', 'b has it cached too')
    await browser.request(a, (s) => s.destroy())

    const replay = (options?: { fresh: true }) => b.load(fakeRequest({ cookie: stolen }), new FakeResponse(), options)
    t.true((await replay({ fresh: true })).isNew, 'a fresh load checks with the storage')
    t.is((await b.load(fakeRequest({ cookie: stolen }), new FakeResponse())).isNew, true, 'dropped by the check: gone for every later request too')
    t.is(b.stats().revokedElsewhere, 1)

    // Without fresh: served from the cache until trustCacheFor has passed, then refused.
    await browser.request(a, (s) => s.set('user', 'bob'))
    const second = browser.cookie
    t.is((await b.load(fakeRequest({ cookie: second }), new FakeResponse())).get('user'), 'bob')
    await browser.request(a, (s) => s.destroy())
    t.is((await b.load(fakeRequest({ cookie: second }), new FakeResponse())).get('user'), 'bob', 'within trustCacheFor the copy is trusted')
    clock.now += 2001
    t.true((await b.load(fakeRequest({ cookie: second }), new FakeResponse())).isNew, 'past it, the version probe finds no record')
  } finally {
    await close()
  }
})

test('renew on one process: the old id is refused on the other once trustCacheFor has passed', async (t) => {
  const { a, b, clock, close } = cluster({ trustCacheFor: 1 })
  try {
    const browser = new Browser()
    await browser.request(a, (s) => s.set('user', 'alice'))
    const old = browser.cookie
    t.is((await browser.request(b, read('user'))).result, 'alice')
    await browser.request(a, (s) => s.renew())
    t.not(browser.cookie, old)
    clock.now += 1001
    const replayed = await b.load(fakeRequest({ cookie: old }), new FakeResponse())
    t.true(replayed.isNew)
    t.is((await browser.request(b, read('user'))).result, 'alice', 'the new id works on the other process')
  } finally {
    await close()
  }
})

test('with a bus, a logout or renew on one process is refused on the other on the next request, within trustCacheFor', async (t) => {
  const network = new MemoryBusNetwork()
  const { a, b, close } = cluster({}, () => ({ bus: new MemoryBus({ network }) }))
  try {
    const browser = new Browser()
    await browser.request(a, (s) => s.set('user', 'alice'))
    const first = browser.cookie
    t.is((await browser.request(b, read('user'))).result, 'alice')
    await browser.request(a, (s) => s.renew())
    await delay(5) // the bus delivers after the current task
    t.true((await b.load(fakeRequest({ cookie: first }), new FakeResponse())).isNew, 'the renewed-away id')
    const second = browser.cookie
    t.is((await browser.request(b, read('user'))).result, 'alice')
    await browser.request(a, (s) => s.destroy())
    await delay(5)
    t.true((await b.load(fakeRequest({ cookie: second }), new FakeResponse())).isNew, 'the destroyed id')
    const stats = b.stats()
    t.is(stats.probed, 0, 'no probe was needed: the bus dropped the copies')
    t.is(stats.revokedElsewhere, 2)
    t.true((stats.bus?.received ?? 0) >= 2)
    t.true((a.stats().bus?.sent ?? 0) >= 2)
  } finally {
    await close()
  }
})

test('a storage only this process can write is never probed, and its cookies carry no version', async (t) => {
  const manager = new SessionManager({ storage: new MemoryStorage(), identities: [new CookieIdentity({ keys: [TEST_KEY] })], trustCacheFor: 0 })
  try {
    const browser = new Browser()
    await browser.request(manager, (s) => s.set('x', 1))
    for (let i = 0; i < 5; i++) await browser.request(manager, read('x'))
    t.is(manager.stats().probed, 0)
    t.notRegex(browser.value('sid') ?? '', /\.\d+\./, 'no version in the cookie value')
  } finally {
    await manager.close()
  }
})

test('trustCacheFor 0 checks every request; concurrent checks of many sessions share storage calls', async (t) => {
  const { a, storage, close } = cluster({ trustCacheFor: 0 })
  let versionCalls = 0
  const versions = storage.versions!.bind(storage)
  storage.versions = (ids) => {
    versionCalls++
    return versions(ids)
  }
  try {
    const cookies: string[] = []
    for (let i = 0; i < 20; i++) {
      const res = new FakeResponse()
      await (await a.load(fakeRequest(), res)).set('i', i)
      cookies.push(res.cookieHeader())
    }
    const before = a.stats().probeCalls
    const sessions = await Promise.all(cookies.map((cookie) => a.load(fakeRequest({ cookie }), new FakeResponse())))
    t.deepEqual(
      sessions.map((s) => s.get('i')),
      Array.from({ length: 20 }, (_, i) => i),
    )
    t.is(a.stats().probeCalls - before, 1, '20 checks in one storage call')
    t.is(versionCalls, 1)
  } finally {
    await close()
  }
})

test('a write that keeps meeting newer versions is given up with SESSION_CONFLICT, nothing of it stored', async (t) => {
  const { a, storage, close } = cluster({ trustCacheFor: 3600 })
  try {
    const created = new FakeResponse()
    const session = await a.load(fakeRequest(), created)
    await session.set('x', 1)
    // Another process wrote the record, and writes it again every time this one reads it.
    await storage.update(session.id, 'other', 0, Date.now() + 60_000)
    const get = storage.get.bind(storage)
    let bumps = 0
    storage.get = async (id) => {
      const record = await get(id)
      if (record !== undefined && bumps < 100) {
        bumps++
        await storage.update(id, 'other', bumps, record.expiresAt)
      }
      return record
    }
    const error = await t.throwsAsync(session.set('x', 2))
    t.true(isSessionError(error, 'SESSION_CONFLICT'))
    t.is(error && isSessionError(error) ? error.status : undefined, 409)
    storage.get = get
    t.is((await get(session.id))?.data['x'], 1)
  } finally {
    await close()
  }
})

test('renew on a copy older than the storage: what another process wrote to the old id is carried to the new one', async (t) => {
  const { a, b, storage, close } = cluster({ trustCacheFor: 3600 })
  try {
    const created = new FakeResponse()
    const first = await a.load(fakeRequest(), created)
    await first.set('user', 'alice')
    await first.set('theme', 'dark')
    const cookie = created.cookieHeader()
    const onA = await a.load(fakeRequest({ cookie }), new FakeResponse())
    const onB = await b.load(fakeRequest({ cookie }), new FakeResponse())
    await onB.set('cart', ['apple']) // acknowledged on b; a's copy (trusted for an hour) does not show it
    await onB.remove('theme')
    t.is(onA.get('cart'), undefined)
    const oldId = onA.id
    const renewing = onA.renew()
    const laterWrite = onA.set('user', 'alice (renewed)') // made on the new id after the renew: it wins
    await Promise.all([renewing, laterWrite])
    t.not(onA.id, oldId)
    t.is(await storage.get(oldId), undefined, 'the old id is gone')
    t.deepEqual((await storage.get(onA.id))?.data, { user: 'alice (renewed)', cart: ['apple'] })
    t.deepEqual(onA.getAll(), { user: 'alice (renewed)', cart: ['apple'] })
  } finally {
    await close()
  }
})
