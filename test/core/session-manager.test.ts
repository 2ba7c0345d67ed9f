import test from 'ava'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionError, type SessionErrorCode } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import { MemoryStorage } from '../../storages/memory.js'
import type { RequestWithSession } from '../../src/middleware/node.js'
import { GatedStorage } from '../helpers/storage-double.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'
import { TEST_KEY, testManager, visit } from '../helpers/manager.js'

const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

test('reads are synchronous after the middleware ran, from the cache', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage })
  const first = await visit(manager)
  await first.session.set('user', { name: 'ada' })
  const reads = storage.count('get')
  const second = await visit(manager, first.cookie)
  const value = second.session.get('user')
  t.false(value instanceof Promise)
  t.deepEqual(value, { name: 'ada' })
  t.deepEqual(second.session.getAll(), { user: { name: 'ada' } })
  t.is(storage.count('get'), reads, 'a cache hit does no storage read')
  // A cache hit resolves without a promise at all.
  const resolved = manager.resolve(fakeRequest({ cookie: first.cookie }), new FakeResponse())
  t.false(resolved instanceof Promise)
  await manager.close()
})

test('the middleware loads a cache miss before next(), and concurrent requests share one read', async (t) => {
  const storage = new GatedStorage()
  const writer = testManager({ storage })
  const { session, res: issuedRes } = await visit(writer)
  await session.set('n', 1)
  const cookie = issuedRes.cookieHeader()
  const reader = testManager({ storage })
  const middleware = reader.middleware()
  const before = storage.count('get')
  const results = await Promise.all(
    Array.from(
      { length: 5 },
      () =>
        new Promise<unknown>((resolve, reject) => {
          const req = fakeRequest({ cookie }) as RequestWithSession
          middleware(req, new FakeResponse() as unknown as ServerResponse, (err) => (err ? reject(err) : resolve(req.session!.get('n'))))
        }),
    ),
  )
  t.deepEqual(results, [1, 1, 1, 1, 1])
  t.is(storage.count('get') - before, 1)
  t.is(reader.stats().loads, 1)
})

test('set is visible at once and settles only after the storage acknowledged it', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage })
  const { session } = await visit(manager)
  storage.hold()
  let acknowledged = false
  const write = session.set('a', 1).then(() => (acknowledged = true))
  t.is(session.get('a'), 1)
  await settled()
  t.false(acknowledged)
  t.is(await storage.inner.get(session.id), undefined)
  storage.release()
  await write
  t.true(acknowledged)
  t.deepEqual((await storage.inner.get(session.id))!.data, { a: 1 })
})

test('writes of one session reach the storage in order, coalescing while one is in flight', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, batching: false })
  const { session } = await visit(manager)
  await session.set('k', 0)
  storage.hold()
  const writes = [session.set('k', 1), session.set('other', 'x'), session.set('k', 2), session.remove('other'), session.set('k', 3)]
  await settled()
  storage.release()
  await Promise.all(writes)
  t.deepEqual((await storage.inner.get(session.id))!.data, { k: 3 })
  t.deepEqual(session.getAll(), { k: 3 })
  t.true(manager.stats().coalesced > 0)
})

test('writes of many sessions go out as one batch when the storage is busy', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage })
  const sessions = await Promise.all(Array.from({ length: 20 }, () => visit(manager)))
  storage.hold()
  const first = sessions[0]!.session.set('n', 0)
  await settled()
  const rest = sessions.slice(1).map(({ session }, i) => session.set('n', i + 1))
  await settled()
  storage.release()
  await Promise.all([first, ...rest])
  t.is(storage.count('batch'), 1, 'the 19 writes that waited went out together')
  for (const [i, { session }] of sessions.entries()) t.is((await storage.inner.get(session.id))!.data['n'], i)
})

test('values must be JSON: invalid ones reject at once with a code and store nothing', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, maxSessionBytes: 1024 })
  const { session } = await visit(manager)
  await session.set('keep', 'me')
  const writesBefore = storage.calls.length
  const cyclic: Record<string, unknown> = {}
  cyclic['self'] = cyclic
  const cases: Array<[unknown, SessionErrorCode]> = [
    [() => 1, 'SESSION_INVALID_VALUE'],
    [Symbol('s'), 'SESSION_INVALID_VALUE'],
    [10n, 'SESSION_INVALID_VALUE'],
    [{ nested: { fn: () => 1 } }, 'SESSION_INVALID_VALUE'],
    [{ big: 1n }, 'SESSION_INVALID_VALUE'],
    [cyclic, 'SESSION_INVALID_VALUE'],
    [undefined, 'SESSION_INVALID_VALUE'],
    ['x'.repeat(2000), 'SESSION_TOO_LARGE'],
    [{ list: 'y'.repeat(2000) }, 'SESSION_TOO_LARGE'],
  ]
  for (const [value, code] of cases) {
    const error = await t.throwsAsync(session.set('bad', value as never), { instanceOf: SessionError })
    t.is(error?.code, code)
  }
  t.is(storage.calls.length, writesBefore, 'nothing reached the storage')
  t.deepEqual(session.getAll(), { keep: 'me' })
})

test('what get returns after set equals what a fresh process loads', async (t) => {
  const storage = new MemoryStorage()
  const manager = testManager({ storage })
  const { session, res: issuedRes } = await visit(manager)
  const when = new Date('2026-01-02T03:04:05.678Z')
  const value = { when, n: Number.NaN, inf: Infinity, list: [1, undefined, 'x'], drop: undefined, nested: { a: [{ b: true }] } }
  await session.set('v', value as never)
  const cookie = issuedRes.cookieHeader()
  const fresh = testManager({ storage })
  const loaded = (await visit(fresh, cookie)).session.get('v')
  t.deepEqual(session.get('v'), loaded)
  t.deepEqual(loaded, { when: '2026-01-02T03:04:05.678Z', n: null, inf: null, list: [1, null, 'x'], nested: { a: [{ b: true }] } })
  await session.set('when', when as never)
  t.is(session.get('when'), '2026-01-02T03:04:05.678Z')
})

test('mutating what get returns cannot make the cache differ from storage', async (t) => {
  const storage = new MemoryStorage()
  const manager = testManager({ storage })
  const { session } = await visit(manager)
  await session.set('user', { roles: ['user'] })
  const user = session.get('user') as { roles: string[] }
  t.throws(() => user.roles.push('admin'), { instanceOf: TypeError })
  t.throws(
    () => {
      ;(session.getAll() as Record<string, unknown>)['user'] = 'x'
    },
    { instanceOf: TypeError },
  )
  t.deepEqual(session.get('user'), { roles: ['user'] })
  t.deepEqual((await storage.get(session.id))!.data, { user: { roles: ['user'] } })
})

test('__proto__, constructor and prototype are ordinary keys', async (t) => {
  const storage = new MemoryStorage()
  const manager = testManager({ storage })
  const { session, res: issuedRes } = await visit(manager)
  t.is(session.get('constructor' as never), undefined)
  await session.set('__proto__', { polluted: true })
  const cookie = issuedRes.cookieHeader()
  await session.set('constructor', 'c')
  await session.set('prototype', [1])
  t.deepEqual(session.get('__proto__'), { polluted: true })
  t.is(session.get('constructor'), 'c')
  t.is(({} as Record<string, unknown>)['polluted'], undefined)
  t.is(Object.getPrototypeOf(session.getAll()), Object.prototype)
  const fresh = (await visit(testManager({ storage }), cookie)).session
  t.deepEqual(fresh.get('__proto__'), { polluted: true })
  await fresh.remove('__proto__')
  t.is(fresh.get('__proto__'), undefined)
  t.is(fresh.get('constructor'), 'c')
})

test('a new session is lazy: nothing stored, no cookie until data is written', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage })
  const { session, res } = await visit(manager)
  t.true(session.isNew)
  t.is(session.get('x'), undefined)
  t.deepEqual(res.setCookies, [])
  t.is(storage.calls.length, 0)
  await session.remove('x')
  await session.clear()
  t.is(storage.calls.length, 0)
  t.deepEqual(res.setCookies, [])
  await session.set('x', 1)
  t.is(res.setCookies.length, 2, 'the cookie and its signature')
  t.is(storage.count('set') + storage.count('batch'), 1)
})

test('read-your-writes survives eviction with writes pending', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, cacheLimit: 1 })
  const a = await visit(manager)
  await a.session.set('v', 'first')
  storage.hold()
  const pending = a.session.set('v', 'second')
  const b = await visit(manager)
  const other = b.session.set('w', 1) // evicts a's session from the one-entry cache
  t.is(manager.stats().pinned, 1)
  const readsBefore = storage.count('get')
  const again = await visit(manager, a.cookie)
  t.is(again.session.get('v'), 'second')
  t.is(storage.count('get'), readsBefore)
  storage.release()
  await Promise.all([pending, other])
  t.is(manager.stats().pinned, 0)
})

test('an evicted session without pending writes is reloaded from storage', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, cacheLimit: 1 })
  const a = await visit(manager)
  await a.session.set('v', 1)
  await (await visit(manager)).session.set('w', 2)
  const events: string[] = []
  manager.on('evict', () => events.push('evict'))
  const again = await visit(manager, a.cookie)
  t.is(again.session.get('v'), 1)
  t.true(storage.count('get') >= 1)
  t.deepEqual(events, ['evict'])
})

test('idle expiry is checked on cache hits: an expired session is never returned', async (t) => {
  const manager = testManager({ maxAge: 60 })
  const expired: string[] = []
  manager.on('expire', (id) => expired.push(id))
  const { session, res: issuedRes } = await visit(manager)
  await session.set('a', 1)
  const cookie = issuedRes.cookieHeader()
  manager.clock.now += 59_000
  t.is((await visit(manager, cookie)).session.get('a'), 1, 'access slides the deadline')
  manager.clock.now += 59_000
  t.is((await visit(manager, cookie)).session.get('a'), 1)
  manager.clock.now += 60_001
  const later = await visit(manager, cookie)
  t.true(later.session.isNew)
  t.is(later.session.get('a'), undefined)
  t.deepEqual(expired, [session.id])
})

test('absolute expiry does not slide', async (t) => {
  const manager = testManager({ maxAge: 60, absoluteMaxAge: 100 })
  const { session, res: issuedRes } = await visit(manager)
  await session.set('a', 1)
  const cookie = issuedRes.cookieHeader()
  for (let i = 0; i < 3; i++) {
    manager.clock.now += 30_000
    t.is((await visit(manager, cookie)).session.get('a'), 1)
  }
  manager.clock.now += 10_001
  t.true((await visit(manager, cookie)).session.isNew)
})

test('storage is touched at most once per touchAfter, without rewriting data', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, maxAge: 100, touchAfter: 10, batching: false })
  const { session, res: issuedRes } = await visit(manager)
  await session.set('a', 1)
  const cookie = issuedRes.cookieHeader()
  const start = manager.clock.now
  for (let i = 1; i <= 30; i++) {
    manager.clock.now = start + i * 1000
    await visit(manager, cookie)
  }
  await manager.close()
  const touches = storage.count('touch')
  t.true(touches >= 2 && touches <= 3, `touched ${touches} times in 30 s with touchAfter 10 s`)
  t.is(storage.count('set'), 1)
  t.is(storage.count('update'), 0)
})

test('a touch re-issues the cookie with the new deadline', async (t) => {
  const manager = testManager({ maxAge: 100, touchAfter: 10 })
  const { session, res: issuedRes } = await visit(manager)
  await session.set('a', 1)
  const cookie = issuedRes.cookieHeader()
  manager.clock.now += 5_000
  t.deepEqual((await visit(manager, cookie)).res.setCookies, [])
  manager.clock.now += 6_000
  const touched = await visit(manager, cookie)
  const expires = /expires=([^;]+)/i.exec(touched.res.setCookies[0] ?? '')?.[1]
  t.is(new Date(expires!).getTime(), Math.floor((manager.clock.now + 100_000) / 1000) * 1000)
})

test('renew keeps the data under a new id and kills the old one', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage })
  const renewed: Array<[string, string]> = []
  manager.on('renew', (newId, oldId) => renewed.push([newId, oldId]))
  const { session, res: issuedRes } = await visit(manager)
  await session.set('user', 'ada')
  const cookie = issuedRes.cookieHeader()
  const oldId = session.id
  const { session: current, res } = await visit(manager, cookie)
  await current.renew()
  t.not(current.id, oldId)
  t.is(current.get('user'), 'ada')
  t.deepEqual(renewed, [[current.id, oldId]])
  t.is(await storage.inner.get(oldId), undefined)
  t.deepEqual((await storage.inner.get(current.id))!.data, { user: 'ada' })
  t.true(res.setCookies.some((line) => line.startsWith(`sid=${current.id};`)))
  const replay = await visit(manager, cookie)
  t.true(replay.session.isNew)
  t.is(replay.session.get('user'), undefined)
  // And in another process, straight from storage.
  t.true((await visit(testManager({ storage }), cookie)).session.isNew)
  const next = await visit(manager, res.cookieHeader())
  t.is(next.session.get('user'), 'ada')
})

test('renew re-issues through the identity that issued the session', async (t) => {
  const { HeaderIdentity } = await import('../../identities/header.js')
  const manager = testManager({ identities: [new CookieIdentity({ path: '/web' }), new HeaderIdentity({ path: '/api' })] })
  const api = await visit(manager, undefined, { url: '/api/login' })
  await api.session.set('user', 'bob')
  const token = api.res.getHeader('x-session-token') as string
  t.is(token, api.session.id)
  t.deepEqual(api.res.setCookies, [])
  const res = new FakeResponse()
  const session = await manager.load(fakeRequest({ url: '/api/me', headers: { 'x-session-token': token } }), res)
  await session.renew()
  t.is(res.getHeader('x-session-token'), session.id)
  t.not(session.id, token)
  t.deepEqual(res.setCookies, [])
})

test('destroy deletes data in storage and cache, clears the cookie as it was set, and a replay gets nothing', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({
    storage,
    identities: [new CookieIdentity({ name: 'app', path: '/shop', domain: 'example.com', host: 'www.example.com', keys: [TEST_KEY] })],
  })
  const at = { host: 'www.example.com', url: '/shop/cart' }
  const { session, res: first } = await visit(manager, undefined, at)
  await session.set('cart', [1, 2])
  const cookie = first.cookieHeader()
  t.regex(first.setCookies[0]!, /path=\/shop; .*domain=example\.com/)
  const { session: current, res } = await visit(manager, cookie, at)
  await current.destroy()
  t.true(current.isDestroyed)
  t.is(current.get('cart'), undefined)
  t.is(await storage.inner.get(session.id), undefined)
  const cleared = res.setCookies.find((line) => line.startsWith('app=;'))
  t.truthy(cleared)
  t.regex(cleared!, /path=\/shop/)
  t.regex(cleared!, /domain=example\.com/)
  t.regex(cleared!, /expires=Thu, 01 Jan 1970/)
  const replay = await visit(manager, cookie, at)
  t.true(replay.session.isNew)
  t.not(replay.session.id, session.id)
  const error = await t.throwsAsync(current.set('cart', [3]), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_DESTROYED')
  await settled()
  t.is(await storage.inner.get(session.id), undefined, 'nothing resurrected')
})

test('a write racing destroy resolves nothing back to life', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage })
  const { session } = await visit(manager)
  await session.set('a', 1)
  storage.hold()
  const write = session.set('a', 2)
  const destroyed = session.destroy()
  storage.release()
  await destroyed
  const error = await t.throwsAsync(write, { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_DESTROYED')
  t.is(manager.stats().pendingWrites, 0)
  t.is(await storage.inner.get(session.id), undefined)
})

test('an unknown but well-formed id is never adopted', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, identities: [new CookieIdentity()] })
  const chosen = generateId()
  const { session, res } = await visit(manager, `sid=${chosen}`)
  t.true(session.isNew)
  await session.set('a', 1)
  t.not(session.id, chosen)
  t.true(res.setCookies[0]!.startsWith(`sid=${session.id};`))
  t.is(await storage.inner.get(chosen), undefined)
})

test('a write that keeps failing rejects with SESSION_STORAGE_FAILED, emits error, and the cache forgets it', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, writeRetries: 2, retryDelay: 1 })
  const errors: Error[] = []
  manager.on('error', (err) => errors.push(err))
  const { session, res: issuedRes } = await visit(manager)
  await session.set('a', 'stored')
  const cookie = issuedRes.cookieHeader()
  storage.failWrites = 3
  const error = await t.throwsAsync(session.set('a', 'lost'), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_STORAGE_FAILED')
  t.regex(String((error?.cause as Error).message), /update failed/)
  t.is(errors.length, 1)
  t.is(storage.count('update'), 3, 'one try and two retries')
  const next = await visit(manager, cookie)
  t.is(next.session.get('a'), 'stored', 'no request sees data the storage does not hold')
})

test('a write that fails then succeeds within the retries is acknowledged', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, writeRetries: 3, retryDelay: 1 })
  const { session } = await visit(manager)
  await session.set('a', 1)
  storage.failWrites = 2
  await session.set('a', 2)
  t.is((await storage.inner.get(session.id))!.data['a'], 2)
  t.is(manager.stats().retries, 2)
})

test('a failed read on a cache miss is a 503 error, never a new session', async (t) => {
  const storage = new GatedStorage()
  const writer = testManager({ storage })
  const { session, res: issuedRes } = await visit(writer)
  await session.set('a', 1)
  const cookie = issuedRes.cookieHeader()
  const reader = testManager({ storage })
  storage.failReads = true
  const error = await t.throwsAsync(reader.load(fakeRequest({ cookie }), new FakeResponse()), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_STORAGE_UNAVAILABLE')
  t.is(error?.status, 503)
  const middleware = reader.middleware()
  const passed = await new Promise<unknown>((resolve) =>
    middleware(fakeRequest({ cookie }) as IncomingMessage, new FakeResponse() as unknown as ServerResponse, resolve),
  )
  t.is((passed as SessionError).status, 503)
  t.is((passed as SessionError).code, 'SESSION_STORAGE_UNAVAILABLE')
  storage.failReads = false
  t.is((await visit(reader, cookie)).session.get('a'), 1)
})

test('a real server answers 503 during a storage outage and recovers', async (t) => {
  const storage = new GatedStorage()
  const seed = testManager({ storage })
  const { session, res: issuedRes } = await visit(seed)
  await session.set('a', 'kept')
  const cookie = issuedRes.cookieHeader()
  const manager = testManager({ storage })
  const middleware = manager.middleware()
  const server = createServer((req, res) =>
    middleware(req, res, (err) => {
      if (err) {
        res.statusCode = (err as SessionError).status ?? 500
        res.end((err as SessionError).code)
        return
      }
      res.end(JSON.stringify((req as IncomingMessage & { session: { get(k: string): unknown } }).session.get('a') ?? null))
    }),
  )
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  storage.failReads = true
  const down = await fetch(url, { headers: { cookie } })
  t.is(down.status, 503)
  t.is(await down.text(), 'SESSION_STORAGE_UNAVAILABLE')
  storage.failReads = false
  const up = await fetch(url, { headers: { cookie } })
  t.is(up.status, 200)
  t.is(await up.text(), '"kept"')
  server.close()
})

test('an ignored failing write leaves no unhandled rejection and the error is emitted', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, writeRetries: 0 })
  const errors: Error[] = []
  manager.on('error', (err) => errors.push(err))
  const { session } = await visit(manager)
  await session.set('a', 1)
  storage.failWrites = 1
  void session.set('a', 2) // not awaited: must not crash the process
  await manager.close()
  t.is(errors.length, 1)
  t.is((errors[0] as SessionError).code, 'SESSION_STORAGE_FAILED')
})

test('close waits for pending writes, closes the storage once, and later writes fail', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage })
  const { session } = await visit(manager)
  storage.hold()
  const write = session.set('a', 1)
  const closed = manager.close()
  const again = manager.close()
  await settled()
  t.is(storage.count('close'), 0)
  storage.release()
  await Promise.all([write, closed, again])
  t.is(storage.count('close'), 1)
  await manager.close()
  t.is(storage.count('close'), 1)
  const error = await t.throwsAsync(session.set('b', 2), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_CLOSED')
  await t.throwsAsync(manager.load(fakeRequest(), new FakeResponse()), { instanceOf: SessionError })
})

test('every async method takes a node-style callback', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, writeRetries: 0 })
  const { session } = await visit(manager)
  const call = (fn: (cb: (err: Error | null) => void) => unknown): Promise<Error | null> => new Promise((resolve) => void fn(resolve))
  t.is(await call((cb) => session.set('a', 1, cb)), null)
  t.is(await call((cb) => session.remove('a', cb)), null)
  t.is(await call((cb) => session.clear(cb)), null)
  t.is(await call((cb) => session.renew(cb)), null)
  const invalid = await call((cb) => session.set('f', (() => 1) as never, cb))
  t.is((invalid as SessionError).code, 'SESSION_INVALID_VALUE')
  storage.failWrites = 1
  const failed = await call((cb) => session.set('a', 2, cb))
  t.is((failed as SessionError).code, 'SESSION_STORAGE_FAILED')
  t.is(await call((cb) => session.destroy(cb)), null)
  t.is(await call((cb) => manager.close(cb)), null)
})

test('events: create, renew, destroy', async (t) => {
  const manager = testManager()
  const events: string[] = []
  manager.on('create', () => events.push('create'))
  manager.on('renew', () => events.push('renew'))
  manager.on('destroy', () => events.push('destroy'))
  const { session } = await visit(manager)
  await session.set('a', 1)
  await session.set('b', 2)
  await session.renew()
  await session.destroy()
  t.deepEqual(events, ['create', 'renew', 'destroy'])
  const stats = manager.stats()
  t.is(stats.created, 1)
  t.is(stats.renewed, 1)
  t.is(stats.destroyed, 1)
  t.is(stats.pendingWrites, 0)
})

test('the default storage is memory, with a one-time warning', async (t) => {
  const warnings: string[] = []
  const listener = (warning: Error & { code?: string }): void => {
    if (warning.code === 'SESSION_MEMORY_STORAGE') warnings.push(warning.message)
  }
  process.on('warning', listener)
  const a = new SessionManager()
  const b = new SessionManager()
  await new Promise((resolve) => setImmediate(resolve))
  process.off('warning', listener)
  t.true(a.storage instanceof MemoryStorage)
  t.true(b.storage instanceof MemoryStorage)
  t.true(warnings.length <= 1)
  t.is(a.identities.length, 0)
  await a.load(fakeRequest(), new FakeResponse())
  t.is(a.identities[0]!.name, 'cookie:sid')
})

test('setPersistentStorage and setIdentityManager (ee-session names)', async (t) => {
  const storage = new MemoryStorage()
  const manager = new SessionManager()
  manager.setPersistentStorage(storage).setIdentityManager(new CookieIdentity({ name: 'a', keys: [TEST_KEY] }))
  t.is(manager.storage, storage)
  const { session } = await visit(manager)
  await session.set('x', 1)
  t.truthy(await storage.get(session.id))
  t.throws(() => manager.setPersistentStorage({} as never), { instanceOf: TypeError })
  t.throws(() => manager.setIdentityManager({} as never), { instanceOf: TypeError })
})

test('bad options throw a TypeError naming the option', (t) => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ cacheLimit: 0 }, /"cacheLimit"/],
    [{ cacheLimit: 1.5 }, /"cacheLimit"/],
    [{ cacheMaxAge: -1 }, /"cacheMaxAge"/],
    [{ maxAge: 0 }, /"maxAge"/],
    [{ maxAge: 'a day' }, /"maxAge"/],
    [{ absoluteMaxAge: Number.NaN }, /"absoluteMaxAge"/],
    [{ maxAge: 10, touchAfter: 10 }, /"touchAfter"/],
    [{ maxSessionBytes: 10 }, /"maxSessionBytes"/],
    [{ writeRetries: -1 }, /"writeRetries"/],
    [{ batching: 'yes' }, /"batching"/],
    [{ storage: {} }, /"storage"/],
    [{ identities: {} }, /"identities"/],
    [{ identities: [{}] }, /"identities\[0\]"/],
    [{ now: 5 }, /"now"/],
  ]
  for (const [options, message] of bad) t.throws(() => new SessionManager({ storage: new MemoryStorage(), ...options }), { instanceOf: TypeError, message })
})

test('keys must be short non-empty strings', async (t) => {
  const manager = testManager()
  const { session } = await visit(manager)
  for (const key of ['', 'k'.repeat(257), 5, null]) {
    const error = await t.throwsAsync(session.set(key as never, 1), { instanceOf: SessionError })
    t.is(error?.code, 'SESSION_INVALID_KEY')
  }
})

test('the session size limit counts the whole session', async (t) => {
  const manager = testManager({ maxSessionBytes: 200 })
  const { session } = await visit(manager)
  await session.set('a', 'x'.repeat(80))
  await session.set('b', 'y'.repeat(80))
  const error = await t.throwsAsync(session.set('c', 'z'.repeat(80)), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_TOO_LARGE')
  t.is(session.get('c'), undefined)
  await session.set('a', 'small')
  await session.set('c', 'z'.repeat(80))
  t.is(JSON.stringify(session.getAll()).length <= 200, true)
})

test('a write after the response headers were sent cannot create a session', async (t) => {
  const manager = testManager()
  const { session, res } = await visit(manager)
  res.headersSent = true
  const error = await t.throwsAsync(session.set('a', 1), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_HEADERS_SENT')
  t.is(manager.stats().created, 0)
})

test('a session whose record disappeared from storage is not resurrected by a write', async (t) => {
  const storage = new MemoryStorage()
  const manager = testManager({ storage })
  const { session, res: issuedRes } = await visit(manager)
  await session.set('a', 1)
  const cookie = issuedRes.cookieHeader()
  await storage.delete(session.id) // another process destroyed it
  const error = await t.throwsAsync(session.set('b', 2), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_DESTROYED')
  t.is(await storage.get(session.id), undefined)
  t.true((await visit(manager, cookie)).session.isNew)
})
