import test from 'ava'
import Koa from 'koa'
import koaSession from 'koa-session'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import '../../src/middleware/koa.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Storage } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { FaultStorage } from '../helpers/storage-double.js'
import { CookieJar, listen, send } from '../helpers/http-client.js'

const KEY = 'koa-test-signing-key-0123456789abcdefgh'

function manager(storage: Storage): SessionManager {
  return new SessionManager({ storage, identities: [new CookieIdentity({ keys: [KEY] })] })
}

/** A Koa app on `manager.koa()`; `ctx.session` is typed without casts. */
async function koaApp(t: import('ava').ExecutionContext, sessions: SessionManager): Promise<string> {
  const app = new Koa()
  app.silent = true
  app.keys = [KEY]
  app.use(sessions.koa())
  app.use(async (ctx) => {
    switch (ctx.path) {
      case '/': {
        const loadedBefore = ctx.session.isNew ? 'new' : 'loaded'
        const views = Number(ctx.session.get('views') ?? 0) + 1
        await ctx.session.set('views', views)
        ctx.body = { views, loadedBefore }
        return
      }
      case '/peek':
        ctx.body = { views: ctx.session.get('views') ?? null }
        return
      case '/logout':
        ctx.session = null
        ctx.body = { destroyed: ctx.session.isDestroyed }
        return
      case '/assign': {
        let message = 'no error'
        try {
          ;(ctx as unknown as { session: unknown }).session = { views: 100 }
        } catch (err) {
          message = `${(err as Error).name}: ${(err as Error).message}`
        }
        ctx.body = { message, views: ctx.session.get('views') ?? null }
        return
      }
      case '/throw-before-write':
        throw new Error('downstream failed before writing')
      case '/write-then-throw':
        await ctx.session.set('views', 50)
        throw new Error('downstream failed after writing')
      case '/with-cookie':
        ctx.cookies.set('theme', 'dark', { signed: false })
        await ctx.session.set('views', 1)
        ctx.body = { ok: true }
        return
      default:
        ctx.status = 404
    }
  })
  const server = await listen(createServer(koaHandler(app)))
  t.teardown(server.close)
  return server.url
}

test('koa: ctx.session is loaded before downstream runs and the counter survives requests', async (t) => {
  const storage = new MemoryStorage()
  const url = await koaApp(t, manager(storage))
  const jar = new CookieJar()
  t.deepEqual((await send(url, { jar })).json(), { views: 1, loadedBefore: 'new' })
  t.truthy(jar.get('sid'))
  t.deepEqual((await send(url, { jar })).json(), { views: 2, loadedBefore: 'loaded' })
  // A cold cache on the same storage (another process) reads it before downstream runs.
  const cold = await koaApp(t, manager(storage))
  t.deepEqual((await send(cold, { jar })).json(), { views: 3, loadedBefore: 'loaded' })
})

test('koa: ctx.session = null destroys the session and clears the cookie', async (t) => {
  const storage = new MemoryStorage()
  const url = await koaApp(t, manager(storage))
  const jar = new CookieJar()
  await send(url, { jar })
  const old = jar.clone()
  const logout = await send(`${url}/logout`, { jar })
  t.deepEqual(logout.json(), { destroyed: true })
  t.true(logout.setCookies.some((line) => line.startsWith('sid=;')))
  t.is(jar.get('sid'), undefined)
  // The delete was queued at the assignment; the response came after it was sent.
  t.is(await storage.length(), 0)
  const cold = await koaApp(t, manager(storage))
  t.deepEqual((await send(`${cold}/peek`, { jar: old })).json(), { views: null })
})

test('koa: assigning anything but null to ctx.session throws a TypeError at the assignment', async (t) => {
  const url = await koaApp(t, manager(new MemoryStorage()))
  const jar = new CookieJar()
  await send(url, { jar })
  const answer = (await send(`${url}/assign`, { jar })).json()
  t.regex(answer['message'] as string, /^TypeError: ctx\.session can only be set to null/)
  t.is(answer['views'], 1)
})

test('koa: nothing is persisted for a request whose downstream threw before writing', async (t) => {
  const storage = new MemoryStorage()
  const url = await koaApp(t, manager(storage))
  const fresh = await send(`${url}/throw-before-write`)
  t.is(fresh.status, 500)
  t.is(fresh.setCookies.length, 0)
  t.is(await storage.length(), 0)

  const jar = new CookieJar()
  await send(url, { jar })
  t.is((await send(`${url}/throw-before-write`, { jar })).status, 500)
  t.deepEqual((await send(`${url}/peek`, { jar })).json(), { views: 1 })
  t.is(await storage.length(), 1)

  // Write-through: what was acknowledged before a throw stays written.
  t.is((await send(`${url}/write-then-throw`, { jar })).status, 500)
  const cold = await koaApp(t, manager(storage))
  t.deepEqual((await send(`${cold}/peek`, { jar })).json(), { views: 50 })
})

test('koa: cookies set with ctx.cookies arrive alongside the session cookie', async (t) => {
  const url = await koaApp(t, manager(new MemoryStorage()))
  const answer = await send(`${url}/with-cookie`)
  const names = answer.setCookies.map((line) => line.split('=')[0])
  t.deepEqual(names.sort(), ['sid', 'sid.sig', 'theme'])
})

test('koa: a storage outage answers 503, never a fresh empty session', async (t) => {
  const storage = new FaultStorage(new MemoryStorage())
  const jar = new CookieJar()
  await send(await koaApp(t, manager(storage)), { jar })
  const cold = await koaApp(t, manager(storage))
  storage.down()
  const answer = await send(`${cold}/peek`, { jar })
  t.is(answer.status, 503)
  t.is(answer.body, 'Service Unavailable')
  t.is(answer.setCookies.length, 0)
  storage.up()
  t.deepEqual((await send(`${cold}/peek`, { jar })).json(), { views: 1 })
})

test('koa: ctx.session defined by another session middleware (koa-session) is refused, not shadowed', async (t) => {
  const app = new Koa()
  app.silent = true
  app.keys = [KEY]
  app.use(koaSession(app))
  app.use(manager(new MemoryStorage()).koa())
  let reached = false
  app.use((ctx) => {
    reached = true
    ctx.body = 'ok'
  })
  const errors: Error[] = []
  app.on('error', (err: Error) => errors.push(err))
  const server = await listen(createServer(koaHandler(app)))
  t.teardown(server.close)
  t.is((await send(server.url)).status, 500)
  t.false(reached)
  t.regex(errors[0]?.message ?? '', /ctx\.session is already defined by another middleware/)
})

/** Koa's request handler for node:http (it handles its own errors, so its promise is not awaited). */
function koaHandler(app: Koa): (req: IncomingMessage, res: ServerResponse) => void {
  const handle = app.callback()
  return (req, res) => void handle(req, res)
}
