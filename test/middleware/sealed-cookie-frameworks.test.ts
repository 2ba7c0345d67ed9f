import test, { type ExecutionContext } from 'ava'
import { createAdaptorServer } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { stream } from 'hono/streaming'
import Koa from 'koa'
import { createServer, type Server } from 'node:http'
import { SealedCookieIdentity } from '../../identities/sealed-cookie.js'
import '../../src/middleware/express.js'
import { createFastifyPlugin } from '../../src/middleware/fastify.js'
import { honoSession, type SessionEnv } from '../../src/middleware/hono.js'
import '../../src/middleware/koa.js'
import type { SessionError } from '../../src/errors.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import type { MemoryStorage } from '../../storages/memory.js'
import { outcome } from '../helpers/app-server.js'
import { CookieJar, send, serveInTest } from '../helpers/http-client.js'

// The sealed cookie through each framework adapter, over real HTTP, with no storage configured:
// the session lives in the cookie only.

const KEY = 'sealed-frameworks-secret-0123456789abcdef'
const MAX_BYTES = 1024

interface Setup {
  readonly manager: SessionManager
  readonly sealed: SealedCookieIdentity
  readonly errors: SessionError[]
}

function setup(): Setup {
  const sealed = new SealedCookieIdentity({ keys: [KEY], maxBytes: MAX_BYTES })
  const manager = new SessionManager({ identities: [sealed] })
  const errors: SessionError[] = []
  manager.on('error', (err) => errors.push(err))
  return { manager, sealed, errors }
}

type Body = Record<string, unknown>

/** The routes every framework serves, on the request's session. */
const ROUTES: Record<string, (session: Session, query: URLSearchParams) => Body | Promise<Body>> = {
  '/count': async (session) => {
    const views = Number(session.get('views') ?? 0) + 1
    await session.set('views', views)
    return { views, id: session.id, isNew: session.isNew }
  },
  '/peek': (session) => ({ views: session.get('views') ?? null, id: session.id, isNew: session.isNew }),
  '/renew': async (session) => {
    const before = session.id
    await session.renew()
    return { before, after: session.id, data: session.getAll() }
  },
  '/destroy': async (session) => {
    await session.destroy()
    return { destroyed: session.isDestroyed }
  },
  '/big': async (session, query) => ({ result: await outcome(session.set('big', 'x'.repeat(Number(query.get('size'))))), data: session.getAll() }),
}

/** What a route answers after the response headers went out: every write's outcome, then what the session reads. */
async function lateWrites(session: Session): Promise<string> {
  const outcomes = [await outcome(session.set('views', 99)), await outcome(session.renew()), await outcome(session.destroy())]
  return `${outcomes.join(' ')} ${String(session.get('views'))}`
}

interface Framework {
  readonly name: string
  /** Start an app on `manager` serving {@link ROUTES}, `/late` (writes after the headers were sent) and, on Koa, `/null`. */
  start(t: ExecutionContext, manager: SessionManager): Promise<string>
}

const FRAMEWORKS: readonly Framework[] = [
  {
    name: 'express',
    async start(t, manager) {
      const app = express()
      app.use(manager.middleware())
      app.get('/late', async (req, res) => {
        res.writeHead(200)
        res.write('partial ')
        res.end(await lateWrites(req.session))
      })
      for (const [path, route] of Object.entries(ROUTES)) {
        app.get(path, async (req, res) => {
          res.json(await route(req.session, new URL(req.url, 'http://x').searchParams))
        })
      }
      return serveInTest(t, createServer(app))
    },
  },
  {
    name: 'koa',
    async start(t, manager) {
      const app = new Koa()
      app.silent = true
      app.use(manager.koa())
      app.use(async (ctx) => {
        if (ctx.path === '/late') {
          ctx.respond = false
          ctx.res.writeHead(200)
          ctx.res.write('partial ')
          ctx.res.end(await lateWrites(ctx.session))
          return
        }
        if (ctx.path === '/null') {
          ctx.session = null
          ctx.body = { destroyed: ctx.session.isDestroyed }
          return
        }
        const route = ROUTES[ctx.path]
        if (route === undefined) ctx.status = 404
        else ctx.body = await route(ctx.session, new URLSearchParams(ctx.querystring))
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
      app.get('/late', async (request, reply) => {
        reply.hijack()
        reply.raw.writeHead(200)
        reply.raw.write('partial ')
        reply.raw.end(await lateWrites(request.session))
      })
      for (const [path, route] of Object.entries(ROUTES)) {
        app.get(path, async (request) => route(request.session, new URL(request.url, 'http://x').searchParams))
      }
      t.teardown(() => app.close())
      return app.listen({ host: '127.0.0.1', port: 0 })
    },
  },
  {
    name: 'hono',
    async start(t, manager) {
      const app = new Hono<SessionEnv>()
      app.use(honoSession({ manager }))
      // The stream is read only once the middleware returned and the headers went on the response.
      app.get('/late', (c) =>
        stream(c, async (body) => {
          await body.write('partial ')
          await body.write(await lateWrites(c.get('session')))
        }),
      )
      for (const [path, route] of Object.entries(ROUTES)) {
        app.get(path, async (c) => c.json(await route(c.get('session'), new URL(c.req.url).searchParams)))
      }
      return serveInTest(t, createAdaptorServer({ fetch: app.fetch }) as Server)
    },
  },
]

const PAST_EXPIRES = /^session=; path=\/; expires=Thu, 01 Jan 1970 00:00:00 GMT/

for (const framework of FRAMEWORKS) {
  const { name } = framework

  test(`${name}: a value set on one request is read on the next, from the cookie alone`, async (t) => {
    const { manager, sealed, errors } = setup()
    const url = await framework.start(t, manager)
    const jar = new CookieJar()
    const first = await send(`${url}/count`, { jar })
    t.like(first.json(), { views: 1, isNew: true })
    t.is(first.setCookies.length, 1)
    t.regex(first.setCookies[0]!, /^session=[A-Za-z0-9_-]{60,}; path=\/; expires=.+; samesite=lax; httponly$/)
    const second = await send(`${url}/count`, { jar })
    t.like(second.json(), { views: 2, isNew: false, id: first.json().id })
    t.like((await send(`${url}/peek`, { jar })).json(), { views: 2, isNew: false })
    t.is(await (manager.storage as MemoryStorage).length(), 0, 'nothing server-side')
    t.like(manager.stats(), { created: 1, cached: 0, loads: 0, storageCalls: 0 })
    t.like(sealed.stats(), { sealed: 2, rejected: 0 })
    t.deepEqual(errors, [])
  })

  test(`${name}: renew gives a new id and keeps the data`, async (t) => {
    const { manager } = setup()
    const url = await framework.start(t, manager)
    const jar = new CookieJar()
    const counted = (await send(`${url}/count`, { jar })).json()
    const renewed = await send(`${url}/renew`, { jar })
    const body = renewed.json()
    t.is(body.before, counted.id)
    t.not(body.after, counted.id)
    t.deepEqual(body.data, { views: 1 })
    t.is(renewed.setCookies.length, 1, 'one cookie, the renewed one')
    t.like((await send(`${url}/peek`, { jar })).json(), { id: body.after, views: 1, isNew: false })
  })

  test(`${name}: destroy clears the cookie with an Expires in the past`, async (t) => {
    const { manager } = setup()
    const url = await framework.start(t, manager)
    const jar = new CookieJar()
    await send(`${url}/count`, { jar })
    const destroyed = await send(`${url}/destroy`, { jar })
    t.deepEqual(destroyed.json(), { destroyed: true })
    t.is(destroyed.setCookies.length, 1)
    t.regex(destroyed.setCookies[0]!, PAST_EXPIRES)
    t.is(jar.get('session'), undefined)
    t.like((await send(`${url}/peek`, { jar })).json(), { isNew: true, views: null })
  })

  test(`${name}: a write after the headers were sent rejects with SESSION_HEADERS_SENT and changes nothing`, async (t) => {
    const { manager } = setup()
    const url = await framework.start(t, manager)
    const jar = new CookieJar()
    await send(`${url}/count`, { jar })
    const late = await send(`${url}/late`, { jar })
    t.is(late.status, 200)
    t.is(late.body, 'partial SESSION_HEADERS_SENT SESSION_HEADERS_SENT SESSION_HEADERS_SENT 1')
    t.deepEqual(late.setCookies, [])
    t.like((await send(`${url}/peek`, { jar })).json(), { views: 1, isNew: false })
  })

  test(`${name}: a write that would not fit in maxBytes rejects with SESSION_TOO_LARGE and leaves the session as it was`, async (t) => {
    const { manager, sealed } = setup()
    const url = await framework.start(t, manager)
    const jar = new CookieJar()
    await send(`${url}/count`, { jar })
    const before = jar.get('session')
    const refused = await send(`${url}/big?size=${MAX_BYTES}`, { jar })
    t.is(refused.status, 200)
    t.deepEqual(refused.json(), { result: 'SESSION_TOO_LARGE', data: { views: 1 } })
    t.deepEqual(refused.setCookies, [], 'the response carries no new cookie')
    t.is(jar.get('session'), before)
    t.is(sealed.stats().tooLarge, 1)
    t.like((await send(`${url}/peek`, { jar })).json(), { views: 1, isNew: false })
    const fits = await send(`${url}/big?size=100`, { jar })
    t.like(fits.json(), { result: 'ok' })
    t.true(Buffer.byteLength(fits.setCookies[0]!) <= MAX_BYTES)
  })

  test(`${name}: a forged cookie is a new empty session, 200, and nothing reaches the error event`, async (t) => {
    const { manager, sealed, errors } = setup()
    const url = await framework.start(t, manager)
    const jar = new CookieJar()
    await send(`${url}/count`, { jar })
    const value = jar.get('session')!
    const at = 40
    const forged = `session=${value.slice(0, at)}${value[at] === 'A' ? 'B' : 'A'}${value.slice(at + 1)}`
    const answer = await send(`${url}/peek`, { headers: { cookie: forged } })
    t.is(answer.status, 200)
    t.like(answer.json(), { isNew: true, views: null })
    t.deepEqual(answer.setCookies, [], 'reading creates nothing')
    const written = await send(`${url}/count`, { headers: { cookie: forged } })
    t.like(written.json(), { views: 1, isNew: true })
    t.is(written.setCookies.length, 1, 'a write replaces the forged cookie')
    t.like(sealed.stats(), { forged: 2, rejected: 2 })
    t.deepEqual(errors, [])
  })
}

test('koa: ctx.session = null clears the sealed cookie with an Expires in the past', async (t) => {
  const { manager } = setup()
  const koa = FRAMEWORKS.find((framework) => framework.name === 'koa')!
  const url = await koa.start(t, manager)
  const jar = new CookieJar()
  await send(`${url}/count`, { jar })
  await send(`${url}/count`, { jar })
  const cleared = await send(`${url}/null`, { jar })
  t.is(cleared.status, 200)
  t.deepEqual(cleared.json(), { destroyed: true })
  t.is(cleared.setCookies.length, 1)
  t.regex(cleared.setCookies[0]!, PAST_EXPIRES)
  t.is(jar.get('session'), undefined)
  t.like((await send(`${url}/count`, { jar })).json(), { views: 1, isNew: true })
})
