import test from 'ava'
import fastifyCookie from '@fastify/cookie'
import fastifySessionPlugin from '@fastify/session'
import Fastify, { type FastifyInstance } from 'fastify'
import { CookieIdentity } from '../../identities/cookie.js'
import { HeaderIdentity } from '../../identities/header.js'
import fastifySession, { createFastifyPlugin } from '../../src/middleware/fastify.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Storage } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { FaultStorage } from '../helpers/storage-double.js'
import { CookieJar, send } from '../helpers/http-client.js'

const KEY = 'fastify-test-signing-key-0123456789abcdef'

function manager(storage: Storage): SessionManager {
  return new SessionManager({ storage, identities: [new HeaderIdentity({ path: '/api' }), new CookieIdentity({ keys: [KEY] })] })
}

/** Routes that use `request.session`, typed without casts. */
function routes(app: FastifyInstance): void {
  app.get('/', async (request) => {
    const loadedBefore = request.session.isNew ? 'new' : 'loaded'
    const views = Number(request.session.get('views') ?? 0) + 1
    await request.session.set('views', views)
    return { views, loadedBefore }
  })
  app.get('/api/views', async (request) => {
    const views = Number(request.session.get('views') ?? 0) + 1
    await request.session.set('views', views)
    return { views }
  })
  app.get('/peek', async (request) => ({ views: request.session.get('views') ?? null }))
  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })
  app.get('/with-cookie', async (request, reply) => {
    reply.setCookie('theme', 'dark', { path: '/' })
    await request.session.set('views', 1)
    return { ok: true }
  })
}

async function start(t: import('ava').ExecutionContext, app: FastifyInstance): Promise<string> {
  t.teardown(() => app.close())
  return app.listen({ host: '127.0.0.1', port: 0 })
}

async function fastifyApp(t: import('ava').ExecutionContext, sessions: SessionManager): Promise<string> {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(createFastifyPlugin(sessions))
  routes(app)
  return start(t, app)
}

test('fastify: request.session is loaded in onRequest and the counter survives requests', async (t) => {
  const storage = new MemoryStorage()
  const url = await fastifyApp(t, manager(storage))
  const jar = new CookieJar()
  t.deepEqual((await send(url, { jar })).json(), { views: 1, loadedBefore: 'new' })
  t.truthy(jar.get('sid'))
  t.deepEqual((await send(url, { jar })).json(), { views: 2, loadedBefore: 'loaded' })
  const cold = await fastifyApp(t, manager(storage))
  t.deepEqual((await send(cold, { jar })).json(), { views: 3, loadedBefore: 'loaded' })
})

test('fastify: a cookie set with @fastify/cookie and the session cookie both arrive', async (t) => {
  const url = await fastifyApp(t, manager(new MemoryStorage()))
  const answer = await send(`${url}/with-cookie`)
  const names = answer.setCookies.map((line) => line.split('=')[0])
  t.deepEqual(names.sort(), ['sid', 'sid.sig', 'theme'])
})

test('fastify: the header token goes out through reply.header', async (t) => {
  const url = await fastifyApp(t, manager(new MemoryStorage()))
  const first = await send(`${url}/api/views`)
  const token = first.headers.get('x-session-token')
  t.truthy(token)
  t.deepEqual((await send(`${url}/api/views`, { headers: { 'x-session-token': token! } })).json(), { views: 2 })
})

test('fastify: destroy clears the cookie; the old cookie brings nothing back', async (t) => {
  const storage = new MemoryStorage()
  const url = await fastifyApp(t, manager(storage))
  const jar = new CookieJar()
  await send(url, { jar })
  const old = jar.clone()
  const logout = await send(`${url}/logout`, { method: 'POST', jar })
  t.true(logout.setCookies.some((line) => line.startsWith('sid=;')))
  t.is(await storage.length(), 0)
  t.deepEqual((await send(`${url}/peek`, { jar: old })).json(), { views: null })
})

test('fastify: the plugin is not encapsulated: routes of other plugins see request.session', async (t) => {
  const app = Fastify()
  await app.register(createFastifyPlugin(manager(new MemoryStorage())))
  await app.register(async (child) => {
    child.get('/child', async (request) => ({ hasSession: request.session !== null && typeof request.session.get === 'function' }))
  })
  const url = await start(t, app)
  t.deepEqual((await send(`${url}/child`)).json(), { hasSession: true })
})

test('fastify: caching-session-manager/fastify registers with { manager }', async (t) => {
  const app = Fastify()
  await app.register(fastifySession, { manager: manager(new MemoryStorage()) })
  routes(app)
  const url = await start(t, app)
  const jar = new CookieJar()
  await send(url, { jar })
  t.deepEqual((await send(url, { jar })).json(), { views: 2, loadedBefore: 'loaded' })
})

test('fastify: bad plugin options and a second session plugin (ours or @fastify/session) are refused at registration', async (t) => {
  const bad = Fastify()
  await t.throwsAsync(bad.register(fastifySession, { manager: {} as SessionManager }).ready(), { instanceOf: TypeError, message: /option "manager"/ })
  const twice = Fastify()
  twice.register(createFastifyPlugin(manager(new MemoryStorage())))
  twice.register(createFastifyPlugin(manager(new MemoryStorage())))
  await t.throwsAsync(twice.ready(), { message: /already decorated/ })
  const theirsFirst = Fastify()
  theirsFirst.register(fastifyCookie)
  theirsFirst.register(fastifySessionPlugin, { secret: KEY })
  theirsFirst.register(createFastifyPlugin(manager(new MemoryStorage())))
  await t.throwsAsync(theirsFirst.ready(), { message: /already decorated by another plugin \(@fastify\/session\?\)/ })
})

test('fastify: a storage outage answers 503, never a fresh empty session', async (t) => {
  const storage = new FaultStorage(new MemoryStorage())
  const jar = new CookieJar()
  await send(await fastifyApp(t, manager(storage)), { jar })
  const cold = await fastifyApp(t, manager(storage))
  storage.down()
  const answer = await send(`${cold}/peek`, { jar })
  t.is(answer.status, 503)
  t.is(answer.json()['code'], 'SESSION_STORAGE_UNAVAILABLE')
  t.is(answer.setCookies.length, 0)
  storage.up()
  t.deepEqual((await send(`${cold}/peek`, { jar })).json(), { views: 1 })
})
