import test from 'ava'
import express, { type NextFunction, type Request, type Response } from 'express'
import { createServer } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import { HeaderIdentity } from '../../identities/header.js'
import '../../src/middleware/express.js'
import { SessionManager } from '../../src/session-manager.js'
import { isSessionError } from '../../src/errors.js'
import type { Storage } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { FaultStorage } from '../helpers/storage-double.js'
import { CookieJar, listen, send } from '../helpers/http-client.js'

const KEY = 'express-test-signing-key-0123456789abcdef'

function manager(storage: Storage): SessionManager {
  return new SessionManager({ storage, identities: [new HeaderIdentity({ path: '/api' }), new CookieIdentity({ keys: [KEY] })] })
}

/** An Express 5 app on `manager.middleware()`, as the README shows it; `req.session` is typed without casts. */
async function expressApp(t: import('ava').ExecutionContext, sessions: SessionManager): Promise<string> {
  const app = express()
  app.use(sessions.middleware())
  app.get(['/', '/api/views'], async (req, res) => {
    const loadedBefore = req.session.isNew ? 'new' : 'loaded'
    const views = Number(req.session.get('views') ?? 0) + 1
    await req.session.set('views', views)
    res.json({ views, loadedBefore, same: res.session === req.session })
  })
  app.post('/logout', async (req, res) => {
    await req.session.destroy()
    res.json({ ok: true })
  })
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const error = err as { status?: number; code?: string }
    res.status(error.status ?? 500).json({ code: error.code ?? null, isSessionError: isSessionError(err) })
  })
  const server = await listen(createServer(app))
  t.teardown(server.close)
  return server.url
}

test('express: req.session is loaded before the next handler and the counter survives requests', async (t) => {
  const storage = new MemoryStorage()
  const url = await expressApp(t, manager(storage))
  const jar = new CookieJar()
  t.like((await send(url, { jar })).json(), { views: 1, loadedBefore: 'new', same: true })
  t.truthy(jar.get('sid'))
  t.truthy(jar.get('sid.sig'))
  t.like((await send(url, { jar })).json(), { views: 2, loadedBefore: 'loaded' })

  // Another process (a cold cache on the same storage) loads it before the handler runs.
  const url2 = await expressApp(t, manager(storage))
  t.like((await send(url2, { jar })).json(), { views: 3, loadedBefore: 'loaded' })
})

test('express: the header identity works through Express responses', async (t) => {
  const url = await expressApp(t, manager(new MemoryStorage()))
  const first = await send(`${url}/api/views`)
  const token = first.headers.get('x-session-token')
  t.truthy(token)
  t.is(first.setCookies.length, 0)
  const second = await send(`${url}/api/views`, { headers: { 'x-session-token': token! } })
  t.is(second.json()['views'], 2)
})

test('express: destroy clears the cookie and the old cookie brings nothing back', async (t) => {
  const storage = new MemoryStorage()
  const url = await expressApp(t, manager(storage))
  const jar = new CookieJar()
  await send(url, { jar })
  const old = jar.clone()
  const logout = await send(`${url}/logout`, { method: 'POST', jar })
  t.true(logout.setCookies.some((line) => line.startsWith('sid=;')))
  t.is(jar.get('sid'), undefined)
  t.is(await storage.length(), 0)
  t.like((await send(url, { jar: old })).json(), { views: 1, loadedBefore: 'new' })
})

test('express: a storage outage reaches the error handler through next(err) with status 503', async (t) => {
  const storage = new FaultStorage(new MemoryStorage())
  const url = await expressApp(t, manager(storage))
  const jar = new CookieJar()
  await send(url, { jar })
  // A cold cache must read the storage, which is down: 503, never a fresh empty session.
  const cold = await expressApp(t, manager(storage))
  storage.down()
  const answer = await send(cold, { jar })
  t.is(answer.status, 503)
  t.deepEqual(answer.json(), { code: 'SESSION_STORAGE_UNAVAILABLE', isSessionError: true })
  t.is(answer.setCookies.length, 0)
})

test('express: without an error handler of its own, Express answers 503', async (t) => {
  const storage = new FaultStorage(new MemoryStorage())
  const jar = new CookieJar()
  await send(await expressApp(t, manager(storage)), { jar })
  const app = express()
  app.use(manager(storage).middleware())
  app.get('/', (req, res) => {
    res.send(String(req.session.get('views')))
  })
  const server = await listen(createServer(app))
  t.teardown(server.close)
  storage.down()
  t.is((await send(server.url, { jar })).status, 503)
  storage.up()
  t.is((await send(server.url, { jar })).body, '1')
})
