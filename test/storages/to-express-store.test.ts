import test from 'ava'
import express, { type Request } from 'express'
import session from 'express-session'
import { createServer } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LevelStorage } from '../../storages/level.js'
import { MemoryStorage } from '../../storages/memory.js'
import { toExpressStore, type StorageExpressStore } from '../../storages/to-express-store.js'
import type { StorageCapabilities } from '../../src/kit/index.js'
import type { Storage, StorageAdmin } from '../../src/types.js'
import { CookieJar, listen, send } from '../helpers/http-client.js'

const SECRET = 'express-session-secret-for-the-tests'
const MINUTE = 60_000

/**
 * express-session's session of a request. Read through a cast: this repository's Express
 * adapter declares `req.session` as its own type, and both declarations meet in one program.
 */
function expressSession(req: Request): session.Session & { views?: number; user?: string } {
  return (req as unknown as { session: session.Session & { views?: number; user?: string } }).session
}

/** Promisified store calls, as express-session makes them. */
function call<T>(invoke: (callback: (err: unknown, value?: T) => void) => void): Promise<T | undefined> {
  return new Promise((resolve, reject) => invoke((err, value) => (err ? reject(err) : resolve(value))))
}

/** The only session of a storage, with its id. */
async function onlySession(storage: Storage & StorageAdmin): Promise<[string, Awaited<ReturnType<Storage['get']>>]> {
  const all = []
  for await (const entry of storage.all()) all.push(entry)
  if (all.length !== 1) throw new Error(`expected one session, found ${all.length}`)
  return all[0]!
}

async function app(t: import('ava').ExecutionContext, storage: Storage & StorageAdmin): Promise<string> {
  const store = toExpressStore(storage)
  const application = express()
  application.use(session({ secret: SECRET, resave: false, saveUninitialized: false, store, cookie: { maxAge: MINUTE } }))
  application.get('/views', (req, res) => {
    const sess = expressSession(req)
    sess.views = (sess.views ?? 0) + 1
    res.json({ views: sess.views, user: sess.user ?? null })
  })
  application.get('/peek', (req, res) => {
    res.json({ views: expressSession(req).views ?? null })
  })
  application.post('/login', (req, res, next) => {
    const views = expressSession(req).views
    expressSession(req).regenerate((err) => {
      if (err) return next(err)
      const sess = expressSession(req)
      sess.user = 'ada'
      if (views !== undefined) sess.views = views
      res.json({ ok: true })
    })
  })
  application.post('/logout', (req, res, next) => {
    expressSession(req).destroy((err) => (err ? next(err) : res.json({ ok: true })))
  })
  const server = await listen(createServer(application))
  t.teardown(server.close)
  return server.url
}

/** The express-session scenario: views survive, regenerate, touch, destroy. */
async function endToEnd(t: import('ava').ExecutionContext, storage: Storage & StorageAdmin): Promise<void> {
  const url = await app(t, storage)
  const jar = new CookieJar()

  t.deepEqual((await send(`${url}/views`, { jar })).json(), { views: 1, user: null })
  t.truthy(jar.get('connect.sid'))
  t.deepEqual((await send(`${url}/views`, { jar })).json(), { views: 2, user: null })
  const [firstId, first] = await onlySession(storage)
  t.is(first!.data['views'], 2)
  t.true(Math.abs(first!.expiresAt - (Date.now() + MINUTE)) < 5000)

  // touch: an unmodified session is only touched, and its deadline moves without a rewrite.
  await storage.touch(firstId, Date.now() + 1000)
  t.deepEqual((await send(`${url}/peek`, { jar })).json(), { views: 2 })
  const [, touched] = await onlySession(storage)
  t.true(touched!.expiresAt > Date.now() + MINUTE / 2)
  t.is(touched!.data['views'], 2)

  // regenerate: a new id, the old one deleted from the storage.
  const beforeLogin = jar.clone()
  await send(`${url}/login`, { method: 'POST', jar })
  const [secondId] = await onlySession(storage)
  t.not(secondId, firstId)
  t.is(await storage.get(firstId), undefined)
  t.deepEqual((await send(`${url}/views`, { jar })).json(), { views: 3, user: 'ada' })
  t.deepEqual((await send(`${url}/peek`, { jar: beforeLogin })).json(), { views: null })

  // destroy: the storage forgets it; the old cookie brings nothing back.
  await send(`${url}/logout`, { method: 'POST', jar })
  t.is(await storage.length(), 0)
  t.deepEqual((await send(`${url}/peek`, { jar })).json(), { views: null })
}

test('toExpressStore: express-session runs on it end to end on MemoryStorage', async (t) => {
  await endToEnd(t, new MemoryStorage())
})

test('toExpressStore: express-session runs on it end to end on LevelStorage (its ids are not ours)', async (t) => {
  const folder = await mkdtemp(join(tmpdir(), 'csm-to-express-'))
  const storage = new LevelStorage({ location: join(folder, 'db'), cleanupInterval: 0 })
  t.teardown(async () => {
    await storage.close()
    await rm(folder, { recursive: true, force: true })
  })
  await endToEnd(t, storage)
})

const HOUR = 60 * MINUTE

/** Epoch ms of the Expires attribute of the `connect.sid` Set-Cookie line of a response. */
function cookieExpires(setCookies: readonly string[]): number {
  const line = setCookies.find((cookie) => cookie.startsWith('connect.sid='))
  const expires = line?.split(';').find((part) => part.trim().toLowerCase().startsWith('expires='))
  if (expires === undefined) throw new Error(`no connect.sid Expires in ${JSON.stringify(setCookies)}`)
  return Date.parse(expires.trim().slice('expires='.length))
}

/**
 * "Remember me" with express-session: `rolling: true` (Set-Cookie on every response),
 * `resave: false`, and a request that only sets `cookie.maxAge`, which express-session hands
 * to `store.touch` rather than `store.set`. Answers the Expires of the three responses
 * (login, remember me, a later read) and what the third request read.
 */
async function rememberMe(t: import('ava').ExecutionContext, store: session.Store): Promise<{ expires: number[]; peek: unknown }> {
  const application = express()
  application.use(session({ secret: SECRET, resave: false, saveUninitialized: false, rolling: true, store, cookie: { maxAge: MINUTE } }))
  application.get('/views', (req, res) => {
    const sess = expressSession(req)
    sess.views = (sess.views ?? 0) + 1
    res.json({ views: sess.views })
  })
  application.get('/remember', (req, res) => {
    expressSession(req).cookie.maxAge = HOUR
    res.json({ ok: true })
  })
  application.get('/peek', (req, res) => {
    res.json({ views: expressSession(req).views ?? null, maxAge: expressSession(req).cookie.originalMaxAge })
  })
  const server = await listen(createServer(application))
  t.teardown(server.close)
  const jar = new CookieJar()
  const first = await send(`${server.url}/views`, { jar })
  const second = await send(`${server.url}/remember`, { jar })
  const third = await send(`${server.url}/peek`, { jar })
  return { expires: [first, second, third].map((answer) => cookieExpires(answer.setCookies)), peek: third.json() }
}

/** Expires of the three responses of {@link rememberMe}: a minute, then an hour, and still an hour. */
function assertRemembered(t: import('ava').ExecutionContext, { expires, peek }: { expires: number[]; peek: unknown }): void {
  const now = Date.now()
  t.true(expires[0]! < now + 2 * MINUTE, 'the first cookie lasts the configured minute')
  t.true(expires[1]! > now + HOUR / 2, '"remember me" answers an hour')
  t.true(expires[2]! > now + HOUR / 2, 'the next response keeps the hour')
  const { views, maxAge } = peek as { views: unknown; maxAge: number }
  t.is(views, 1, 'the data stays')
  // express-session computes originalMaxAge from the clock: an hour, give or take a millisecond.
  t.true(maxAge > HOUR - MINUTE, 'the cookie loaded is the one remembered')
}

test('express-session MemoryStore keeps a cookie changed alone (the reference for toExpressStore)', async (t) => {
  assertRemembered(t, await rememberMe(t, new session.MemoryStore()))
})

test('toExpressStore: "remember me" (only cookie.maxAge changed, resave false) survives the next request on MemoryStorage', async (t) => {
  const storage = new MemoryStorage()
  assertRemembered(t, await rememberMe(t, toExpressStore(storage)))
  const [, record] = await onlySession(storage)
  t.true(record!.expiresAt > Date.now() + HOUR / 2, 'the stored deadline is the hour too')
})

test('toExpressStore: "remember me" survives the next request on LevelStorage', async (t) => {
  const folder = await mkdtemp(join(tmpdir(), 'csm-to-express-'))
  const storage = new LevelStorage({ location: join(folder, 'db'), cleanupInterval: 0 })
  t.teardown(async () => {
    await storage.close()
    await rm(folder, { recursive: true, force: true })
  })
  assertRemembered(t, await rememberMe(t, toExpressStore(storage)))
})

test('toExpressStore: the store contract with callbacks (get, set, destroy, touch, all, length, clear)', async (t) => {
  const storage = new MemoryStorage()
  const store: StorageExpressStore = toExpressStore(storage)
  const sid = 'r3ZCuM8iSHGbYV1uqJ1dFqQZp6yuzhn8' // an express-session id: not this library's format
  const expires = new Date(Date.now() + MINUTE)
  const sess = { cookie: { originalMaxAge: MINUTE, expires, httpOnly: true, path: '/' }, views: 4 } as unknown as session.SessionData

  t.is(await call<session.SessionData | null>((cb) => store.get(sid, cb)), null)
  await call((cb) => store.set(sid, sess, cb))
  const got = await call<session.SessionData | null>((cb) => store.get(sid, cb))
  t.is((got as unknown as { views: number }).views, 4)
  t.is(new Date(got!.cookie.expires as unknown as string).getTime(), expires.getTime())
  t.is((await storage.get(sid))!.expiresAt, expires.getTime())

  const later = new Date(Date.now() + 10 * MINUTE)
  await call((cb) => store.touch(sid, { ...sess, cookie: { ...sess.cookie, expires: later } }, cb as () => void))
  t.is((await storage.get(sid))!.expiresAt, later.getTime())
  const touched = await call<session.SessionData | null>((cb) => store.get(sid, cb))
  t.is(new Date(touched!.cookie.expires as unknown as string).getTime(), later.getTime(), 'get reports the touched deadline')

  await call((cb) => store.set('second', { cookie: { originalMaxAge: null, expires: null } }, cb))
  const second = await storage.get('second')
  t.true(Math.abs(second!.expiresAt - (Date.now() + 86_400_000)) < 5000, 'a browser-session cookie lives ttl seconds')

  t.is(await call<number>((cb) => store.length(cb)), 2)
  const all = await call<Record<string, session.SessionData>>((cb) => store.all(cb))
  t.deepEqual(Object.keys(all!).sort(), ['r3ZCuM8iSHGbYV1uqJ1dFqQZp6yuzhn8', 'second'])
  await call((cb) => store.destroy(sid, cb))
  await call((cb) => store.destroy('never-there', cb))
  t.is(await call<session.SessionData | null>((cb) => store.get(sid, cb)), null)
  await call((cb) => store.touch('never-there', sess, cb as () => void))
  t.is(await storage.get('never-there'), undefined, 'touch creates nothing')
  await call((cb) => store.clear(cb))
  t.is(await call<number>((cb) => store.length(cb)), 0)
})

test('toExpressStore: an expired session is not returned', async (t) => {
  const store = toExpressStore(new MemoryStorage())
  const sess = { cookie: { originalMaxAge: 1, expires: new Date(Date.now() - 1000) } } as unknown as session.SessionData
  await call((cb) => store.set('gone', sess, cb))
  t.is(await call((cb) => store.get('gone', cb)), null)
})

test('toExpressStore: storage failures reach the callback as errors, never as "no session"', async (t) => {
  const storage = new MemoryStorage()
  const store = toExpressStore(storage)
  await storage.close()
  await t.throwsAsync(
    call((cb) => store.get('any', cb)),
    { message: /closed/ },
  )
  await t.throwsAsync(
    call((cb) => store.set('any', { cookie: { originalMaxAge: null } }, cb)),
    { message: /closed/ },
  )
  await t.throwsAsync(
    call((cb) => store.length(cb)),
    { message: /closed/ },
  )
  await t.throwsAsync(
    call((cb) => store.all(cb)),
    { message: /closed/ },
  )
})

test('toExpressStore: a session JSON cannot hold is refused through the callback', async (t) => {
  const store = toExpressStore(new MemoryStorage())
  const sess = { cookie: { originalMaxAge: null }, big: BigInt(1) } as unknown as session.SessionData
  await t.throwsAsync(
    call((cb) => store.set('x', sess, cb)),
    { instanceOf: TypeError },
  )
})

test("toExpressStore: a session beyond the storage's declared limits is refused through the callback as SESSION_INVALID_VALUE, and nothing is stored", async (t) => {
  class Limited extends MemoryStorage {
    override readonly capabilities: StorageCapabilities = {
      ...new MemoryStorage().capabilities,
      limits: { maxDepth: 2, wellFormedKeys: true, maxDataBytes: 200 },
    }
  }
  const storage = new Limited()
  const store = toExpressStore(storage)
  const cookie = { originalMaxAge: null }
  for (const extra of [{ deep: { a: { b: { c: 1 } } } }, { ['lone\ud800']: 1 }, { big: 'x'.repeat(300) }]) {
    const sess = { cookie, ...extra } as unknown as session.SessionData
    const error = await t.throwsAsync(call((cb) => store.set('x', sess, cb)))
    t.is((error as { code?: string }).code, 'SESSION_INVALID_VALUE', JSON.stringify(Object.keys(extra)))
  }
  t.is(await storage.length(), 0)
  await call((cb) => store.set('x', { cookie, ok: { a: 1 } } as unknown as session.SessionData, cb))
  t.is(await storage.length(), 1, 'what fits is stored')
})

test('toExpressStore: options are checked', (t) => {
  t.throws(() => toExpressStore({} as Storage & StorageAdmin), { instanceOf: TypeError, message: /storage with/ })
  t.throws(() => toExpressStore(new MemoryStorage(), { ttl: 0 }), { instanceOf: TypeError, message: /"ttl"/ })
})
