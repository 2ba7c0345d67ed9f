import test, { type ExecutionContext } from 'ava'
import { createAdaptorServer } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { setCookie } from 'hono/cookie'
import Koa from 'koa'
import { createServer, type Server } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import { HeaderIdentity } from '../../identities/header.js'
import type { SessionError } from '../../src/errors.js'
import '../../src/middleware/express.js'
import { createFastifyPlugin } from '../../src/middleware/fastify.js'
import { honoSession, type SessionEnv } from '../../src/middleware/hono.js'
import '../../src/middleware/koa.js'
import type { RequestWithSession } from '../../src/middleware/node.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import { MemoryStorage } from '../../storages/memory.js'
import { outcome } from '../helpers/app-server.js'
import { CookieJar, send, serveInTest, type Answer } from '../helpers/http-client.js'
import { FaultStorage } from '../helpers/storage-double.js'

// A new session's id is issued on the response at once, and its first write goes to storage
// after. When that write fails (and the headers are not sent yet), the response must not hand
// the client an id that names nothing: through each framework adapter, over real HTTP, the
// identity's Set-Cookie lines (or token header) are taken back, and only those.

const KEY = 'unstored-id-test-signing-key-0123456789abcdef'

interface Setup {
  readonly manager: SessionManager
  readonly storage: FaultStorage<MemoryStorage>
  readonly errors: SessionError[]
}

function setup(t: ExecutionContext): Setup {
  const storage = new FaultStorage(new MemoryStorage())
  const manager = new SessionManager({
    storage,
    identities: [new HeaderIdentity({ path: '/api' }), new CookieIdentity({ keys: [KEY] })],
    writeRetries: 0,
    retryDelay: 0,
  })
  const errors: SessionError[] = []
  manager.on('error', (err) => errors.push(err))
  t.teardown(() => manager.close().catch(() => undefined))
  return { manager, storage, errors }
}

type Body = Record<string, unknown>

/** Outcomes of writes that `/late` started and did not wait for, by the `tag` of its query. */
const lateWrites = new Map<string, Promise<string>>()

/** The routes every framework serves (under `/` for the cookie, under `/api` for the token); each framework first sets a cookie and a header of its own. */
function route(session: Session, path: string, query: URLSearchParams): Body | Promise<Body> {
  switch (path.replace(/^\/api/, '')) {
    case '/write':
      return outcome(session.set('views', 1)).then((result) => ({ result, id: session.id }))
    case '/peek':
      return { views: session.get('views') ?? null, isNew: session.isNew }
    case '/renew': {
      const before = session.id
      return outcome(session.renew()).then((result) => ({ result, before, after: session.id }))
    }
    case '/late':
      // Not awaited: the response goes out before the write settles.
      lateWrites.set(query.get('tag')!, outcome(session.set('views', 1)))
      return { started: true, id: session.id }
    default:
      return { error: 'no route' }
  }
}

interface Framework {
  readonly name: string
  /** Start an app on `manager` serving {@link route}; the app sets `app=kept` and `x-app: kept` before the route runs. */
  start(t: ExecutionContext, manager: SessionManager): Promise<string>
}

const FRAMEWORKS: readonly Framework[] = [
  {
    name: 'node:http',
    start(t, manager) {
      const sessions = manager.middleware()
      const server = createServer((req, res) => {
        sessions(req, res, async (err) => {
          if (err !== undefined) {
            res.statusCode = 500
            res.end()
            return
          }
          const url = new URL(req.url ?? '/', 'http://x')
          res.setHeader('Set-Cookie', ['app=kept; path=/'])
          res.setHeader('x-app', 'kept')
          const body = await route((req as RequestWithSession).session!, url.pathname, url.searchParams)
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify(body))
        })
      })
      return serveInTest(t, server)
    },
  },
  {
    name: 'express',
    start(t, manager) {
      const app = express()
      app.use(manager.middleware())
      app.use(async (req, res) => {
        res.cookie('app', 'kept')
        res.set('x-app', 'kept')
        res.json(await route(req.session, req.path, new URL(req.url, 'http://x').searchParams))
      })
      return serveInTest(t, createServer(app))
    },
  },
  {
    name: 'koa',
    start(t, manager) {
      const app = new Koa()
      app.silent = true
      app.use(manager.koa())
      app.use(async (ctx) => {
        ctx.cookies.set('app', 'kept', { signed: false })
        ctx.set('x-app', 'kept')
        ctx.body = await route(ctx.session, ctx.path, new URLSearchParams(ctx.querystring))
      })
      const handle = app.callback()
      return serveInTest(
        t,
        createServer((req, res) => void handle(req, res)),
      )
    },
  },
  {
    name: 'fastify',
    async start(t, manager) {
      const app = Fastify()
      await app.register(createFastifyPlugin(manager))
      app.get('/*', async (request, reply) => {
        // Through reply.header, so the app's line shares the Set-Cookie list the identity writes to.
        reply.header('set-cookie', 'app=kept; path=/')
        reply.header('x-app', 'kept')
        const url = new URL(request.url, 'http://x')
        return route(request.session, url.pathname, url.searchParams)
      })
      t.teardown(() => app.close())
      return app.listen({ host: '127.0.0.1', port: 0 })
    },
  },
  {
    name: 'hono',
    start(t, manager) {
      const app = new Hono<SessionEnv>()
      app.use(honoSession({ manager }))
      app.get('/*', async (c) => {
        setCookie(c, 'app', 'kept', { path: '/' })
        c.header('x-app', 'kept')
        const url = new URL(c.req.url)
        return c.json(await route(c.get('session'), url.pathname, url.searchParams))
      })
      return serveInTest(t, createAdaptorServer({ fetch: app.fetch }) as Server)
    },
  },
]

/** The names of the cookies an answer sets, sorted. */
function cookieNames(answer: Answer): string[] {
  return answer.setCookies.map((line) => line.slice(0, line.indexOf('='))).sort()
}

/** Fail the storage's `set` operations (a new record's first write), let every other write through. */
function failSets(storage: FaultStorage<MemoryStorage>): void {
  storage.failOperations((op) => op.type === 'set')
}

const unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => unhandled.push(reason))

for (const framework of FRAMEWORKS) {
  const { name } = framework

  test(`${name}: a new session whose first write fails sends no cookie for it; the app's own cookie and header stay`, async (t) => {
    const { manager, storage } = setup(t)
    const url = await framework.start(t, manager)
    failSets(storage)
    const failed = await send(`${url}/write`)
    t.is(failed.status, 200)
    t.is(failed.json().result, 'SESSION_STORAGE_FAILED')
    t.deepEqual(cookieNames(failed), ['app'])
    t.regex(failed.setCookies[0]!, /^app=kept; path=\//i)
    t.is(failed.headers.get('x-app'), 'kept')
    t.is(await storage.inner.length(), 0, 'nothing was stored')
  })

  test(`${name}: with the header identity, a new session whose first write fails sends no token`, async (t) => {
    const { manager, storage } = setup(t)
    const url = await framework.start(t, manager)
    failSets(storage)
    const failed = await send(`${url}/api/write`)
    t.is(failed.json().result, 'SESSION_STORAGE_FAILED')
    t.is(failed.headers.get('x-session-token'), null)
    t.is(failed.headers.get('x-app'), 'kept')
    t.deepEqual(cookieNames(failed), ['app'])
  })

  test(`${name}: a successful first write sets the cookie (and the token), and the session is there on the next request`, async (t) => {
    const { manager, storage } = setup(t)
    const url = await framework.start(t, manager)
    const jar = new CookieJar()
    const written = await send(`${url}/write`, { jar })
    t.is(written.json().result, 'ok')
    t.deepEqual(cookieNames(written), ['app', 'sid', 'sid.sig'])
    t.like((await send(`${url}/peek`, { jar })).json(), { views: 1, isNew: false })
    const api = await send(`${url}/api/write`)
    t.is(api.json().result, 'ok')
    const token = api.headers.get('x-session-token')
    t.is(token, api.json<{ id: string }>().id)
    t.like((await send(`${url}/api/peek`, { headers: { 'x-session-token': token! } })).json(), { views: 1, isNew: false })
    t.is(await storage.inner.length(), 2)
  })

  test(`${name}: a renew whose new id's write fails sends no new cookie; the old id is gone all the same`, async (t) => {
    const { manager, storage } = setup(t)
    const url = await framework.start(t, manager)
    const jar = new CookieJar()
    await send(`${url}/write`, { jar })
    const oldCookie = jar.get('sid')
    failSets(storage)
    const renewed = await send(`${url}/renew`, { jar })
    const body = renewed.json()
    t.is(body.result, 'SESSION_STORAGE_FAILED')
    t.not(body.after, body.before)
    t.deepEqual(cookieNames(renewed), ['app'], 'no cookie for the new id')
    t.is(jar.get('sid'), oldCookie, 'the client keeps its old cookie')
    storage.up()
    t.like((await send(`${url}/peek`, { jar })).json(), { views: null, isNew: true }, 'which opens nothing: the old id was deleted')
    t.is(await storage.inner.length(), 0, 'neither id is stored')
  })

  test(`${name}: a renew whose new id's write fails sends no new token`, async (t) => {
    const { manager, storage } = setup(t)
    const url = await framework.start(t, manager)
    const token = (await send(`${url}/api/write`)).headers.get('x-session-token')!
    failSets(storage)
    const renewed = await send(`${url}/api/renew`, { headers: { 'x-session-token': token } })
    t.is(renewed.json().result, 'SESSION_STORAGE_FAILED')
    t.is(renewed.headers.get('x-session-token'), null)
    t.is(renewed.headers.get('x-app'), 'kept')
  })

  test(`${name}: a write not awaited that fails after the response went out changes nothing more: the error reaches the caller, nothing crashes`, async (t) => {
    const { manager, storage, errors } = setup(t)
    const url = await framework.start(t, manager)
    storage.hold()
    failSets(storage)
    const tag = `${name}-late`
    const answer = await send(`${url}/late?tag=${tag}`)
    t.is(answer.status, 200)
    t.deepEqual(cookieNames(answer), ['app', 'sid', 'sid.sig'], 'the headers went out with the id before the write failed')
    storage.release()
    t.is(await lateWrites.get(tag), 'SESSION_STORAGE_FAILED')
    t.true(errors.some((err) => err.code === 'SESSION_STORAGE_FAILED'))
    // The server keeps serving, and nothing was left unhandled.
    storage.up()
    t.is((await send(`${url}/write`)).json().result, 'ok')
    await new Promise((resolve) => setImmediate(resolve))
    t.deepEqual(unhandled, [])
  })
}
