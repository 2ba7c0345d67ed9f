import test from 'ava'
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import { setCookie } from 'hono/cookie'
import { MemoryStore, sessionMiddleware } from 'hono-sessions'
import type { Server } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import { HeaderIdentity } from '../../identities/header.js'
import type { SessionError } from '../../src/errors.js'
import honoSessionDefault, { createHonoMiddleware, honoSession, type SessionEnv } from '../../src/middleware/hono.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Storage } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { FaultStorage, InjectedFault } from '../helpers/storage-double.js'
import { CookieJar, listen, send } from '../helpers/http-client.js'

const KEY = 'hono-test-signing-key-0123456789abcdefghij'

function manager(storage: Storage): SessionManager {
  return new SessionManager({ storage, identities: [new HeaderIdentity({ path: '/api' }), new CookieIdentity({ keys: [KEY] })] })
}

/** Routes that use `c.get('session')`, typed through `SessionEnv` without casts. */
function honoApp(sessions: SessionManager): Hono<SessionEnv> {
  const app = new Hono<SessionEnv>()
  app.use(honoSession({ manager: sessions }))
  app.get('/', async (c) => {
    const session = c.get('session')
    const loadedBefore = session.isNew ? 'new' : 'loaded'
    const views = Number(session.get('views') ?? 0) + 1
    await session.set('views', views)
    return c.json({ views, loadedBefore })
  })
  app.get('/api/views', async (c) => {
    const views = await c.get('session').update('views', (n) => Number(n ?? 0) + 1)
    return c.json({ views })
  })
  app.get('/peek', (c) => c.json({ views: c.get('session').get('views') ?? null }))
  app.post('/login', async (c) => {
    await c.get('session').renew()
    await c.get('session').set('user', 'ada')
    return c.json({ user: 'ada' })
  })
  app.post('/logout', async (c) => {
    await c.get('session').destroy()
    return c.json({ ok: true })
  })
  app.get('/with-cookie', async (c) => {
    setCookie(c, 'theme', 'dark', { path: '/' })
    c.header('x-handler', 'yes')
    await c.get('session').set('views', 1)
    return c.text('ok')
  })
  app.get('/throw', () => {
    throw new Error('handler failed')
  })
  app.get('/write-then-throw', async (c) => {
    await c.get('session').set('views', 50)
    throw new Error('handler failed after writing')
  })
  app.onError((err, c) => c.json({ error: err.message }, 500))
  return app
}

/** Serve `app` with `@hono/node-server` on 127.0.0.1 on a free port. */
async function serve(t: import('ava').ExecutionContext, app: Hono<SessionEnv> | Hono): Promise<string> {
  const server = await listen(createAdaptorServer({ fetch: app.fetch }) as Server)
  t.teardown(server.close)
  return server.url
}

test("hono: c.get('session') is loaded before the handler and the counter survives requests", async (t) => {
  const storage = new MemoryStorage()
  const url = await serve(t, honoApp(manager(storage)))
  const jar = new CookieJar()
  const first = await send(url, { jar })
  t.deepEqual(first.json(), { views: 1, loadedBefore: 'new' })
  t.truthy(jar.get('sid'))
  t.truthy(jar.get('sid.sig'), 'signed')
  t.false(
    first.setCookies.some((line) => /;\s*secure/i.test(line)),
    "secure: 'auto' over http: not Secure",
  )
  t.deepEqual((await send(url, { jar })).json(), { views: 2, loadedBefore: 'loaded' })
  // A cold cache on the same storage (another process) reads it before the handler runs.
  const cold = await serve(t, honoApp(manager(storage)))
  t.deepEqual((await send(cold, { jar })).json(), { views: 3, loadedBefore: 'loaded' })
})

test('hono: nothing is stored and no cookie is sent until the session is written', async (t) => {
  const storage = new MemoryStorage()
  const url = await serve(t, honoApp(manager(storage)))
  const peek = await send(`${url}/peek`)
  t.deepEqual(peek.json(), { views: null })
  t.deepEqual(peek.setCookies, [])
  t.is(await storage.length(), 0)
})

test('hono: the session cookie arrives alongside cookies and headers set through Hono', async (t) => {
  const url = await serve(t, honoApp(manager(new MemoryStorage())))
  const answer = await send(`${url}/with-cookie`)
  t.deepEqual(answer.setCookies.map((line) => line.split('=')[0]).sort(), ['sid', 'sid.sig', 'theme'])
  t.is(answer.headers.get('x-handler'), 'yes')
  t.is(answer.body, 'ok')
})

test('hono: login renews the id, the old one is refused; logout clears the cookie and the session', async (t) => {
  const storage = new MemoryStorage()
  const url = await serve(t, honoApp(manager(storage)))
  const jar = new CookieJar()
  await send(url, { jar })
  const before = jar.clone()
  t.deepEqual((await send(`${url}/login`, { method: 'POST', jar })).json(), { user: 'ada' })
  t.not(jar.get('sid'), before.get('sid'))
  t.deepEqual((await send(url, { jar })).json(), { views: 2, loadedBefore: 'loaded' })
  t.deepEqual((await send(`${url}/peek`, { jar: before })).json(), { views: null }, 'the old id no longer works')
  const logout = await send(`${url}/logout`, { method: 'POST', jar })
  t.true(logout.setCookies.some((line) => line.startsWith('sid=;')))
  t.is(jar.get('sid'), undefined)
  t.is(await storage.length(), 0)
})

test('hono: the header identity answers through a response header under /api', async (t) => {
  const url = await serve(t, honoApp(manager(new MemoryStorage())))
  const first = await send(`${url}/api/views`)
  const token = first.headers.get('x-session-token')
  t.regex(token ?? '', /^[\w-]{43}$/)
  t.deepEqual(first.setCookies, [])
  t.deepEqual((await send(`${url}/api/views`, { headers: { 'x-session-token': token! } })).json(), { views: 2 })
})

test('hono: a storage outage answers 503 JSON with a public message only; the error event keeps the storage error as cause', async (t) => {
  const storage = new FaultStorage(new MemoryStorage())
  const jar = new CookieJar()
  await send(await serve(t, honoApp(manager(storage))), { jar })
  const coldManager = manager(storage)
  const errors: SessionError[] = []
  coldManager.on('error', (err) => errors.push(err))
  const cold = await serve(t, honoApp(coldManager))
  storage.down()
  const answer = await send(`${cold}/peek`, { jar })
  t.is(answer.status, 503)
  t.is(answer.headers.get('content-type'), 'application/json')
  t.deepEqual(answer.json(), { error: 'SESSION_STORAGE_UNAVAILABLE', message: 'the session storage is unavailable; try again shortly' })
  t.false(answer.body.includes('injected'), 'no storage internals in the body')
  t.deepEqual(answer.setCookies, [])
  t.is(errors.length, 1)
  t.is(errors[0]!.code, 'SESSION_STORAGE_UNAVAILABLE')
  // The storage's own error is on the cause chain of the emitted error, for logs.
  const causes: unknown[] = []
  for (let err: unknown = errors[0]; err instanceof Error; err = err.cause) causes.push(err)
  t.true(
    causes.some((err) => err instanceof InjectedFault),
    'the storage error is kept as cause',
  )
  storage.up()
  t.deepEqual((await send(`${cold}/peek`, { jar })).json(), { views: 1 })
})

test("hono: secure: 'auto' follows the request URL's protocol", async (t) => {
  const app = honoApp(manager(new MemoryStorage()))
  // In process (no TLS server in the tests): Hono's own request with an https URL.
  const secure = await app.request('https://app.example/')
  t.true(secure.headers.getSetCookie().every((line) => /;\s*secure/i.test(line)))
  const plain = await app.request('http://app.example/')
  t.true(plain.headers.getSetCookie().length > 0)
  t.false(plain.headers.getSetCookie().some((line) => /;\s*secure/i.test(line)))
})

test('hono: a handler that throws reaches Hono, and what it had not written is not stored', async (t) => {
  const storage = new MemoryStorage()
  const url = await serve(t, honoApp(manager(storage)))
  const answer = await send(`${url}/throw`)
  t.is(answer.status, 500)
  t.deepEqual(answer.json(), { error: 'handler failed' })
  t.deepEqual(answer.setCookies, [])
  t.is(await storage.length(), 0)

  // Write-through: what was acknowledged before the throw is stored, and the error response carries its cookie.
  const jar = new CookieJar()
  const written = await send(`${url}/write-then-throw`, { jar })
  t.is(written.status, 500)
  t.truthy(jar.get('sid'))
  t.deepEqual((await send(`${url}/peek`, { jar })).json(), { views: 50 })
})

test('hono: a session set by another session middleware (hono-sessions) is refused, not shadowed', async (t) => {
  const app = new Hono()
  app.use(sessionMiddleware({ store: new MemoryStore(), encryptionKey: 'a-hono-sessions-key-of-32-characters-or-more' }))
  app.use(createHonoMiddleware(manager(new MemoryStorage())))
  let reached = false
  app.get('/', (c) => {
    reached = true
    return c.text('ok')
  })
  const errors: Error[] = []
  app.onError((err, c) => {
    errors.push(err)
    return c.text('refused', 500)
  })
  const url = await serve(t, app)
  t.is((await send(url)).status, 500)
  t.false(reached)
  t.regex(errors[0]?.message ?? '', /already set by another middleware/)
})

test('hono: honoSession needs a manager; the default export is honoSession', (t) => {
  t.throws(() => honoSession({} as never), { instanceOf: TypeError, message: /"manager"/ })
  t.is(honoSessionDefault, honoSession)
})
