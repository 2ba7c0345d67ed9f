import test, { type ExecutionContext } from 'ava'
import express from 'express'
import Fastify from 'fastify'
import Koa from 'koa'
import { createServer } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import '../../src/middleware/express.js'
import fastifySession from '../../src/middleware/fastify.js'
import '../../src/middleware/koa.js'
import { SessionManager } from '../../src/session-manager.js'
import { MemoryStorage } from '../../storages/memory.js'
import { listen, send } from '../helpers/http-client.js'

// `secure: 'auto'` behind a TLS-terminating proxy: the framework's view of the protocol
// (Express `trust proxy`, Koa `app.proxy`, Fastify `trustProxy`) decides the Secure flag; plain
// node:http keeps the identity's own `trustProxy`.

const KEY = 'secure-auto-test-signing-key-0123456789abcdef'
const FORWARDED = { 'x-forwarded-proto': 'https' }

function manager(trustProxy = false): SessionManager {
  return new SessionManager({ storage: new MemoryStorage(), identities: [new CookieIdentity({ keys: [KEY], secure: 'auto', trustProxy })] })
}

/** The session cookie's Set-Cookie line of a request that writes the session. */
async function sessionCookie(t: ExecutionContext, url: string, headers: Record<string, string>): Promise<string> {
  const answer = await send(url, { headers })
  t.is(answer.status, 200)
  const line = answer.setCookies.find((cookie) => cookie.startsWith('sid='))
  if (line === undefined) throw new Error(`no session cookie in ${JSON.stringify(answer.setCookies)}`)
  return line
}

function isSecure(line: string): boolean {
  return /;\s*secure(;|$)/i.test(line)
}

async function koaServer(t: ExecutionContext, proxy: boolean): Promise<string> {
  const app = new Koa()
  app.proxy = proxy
  app.use(manager().koa())
  app.use(async (ctx) => {
    await ctx.session.set('views', 1)
    ctx.body = { protocol: ctx.protocol }
  })
  const handle = app.callback()
  const server = await listen(createServer((req, res) => void handle(req, res)))
  t.teardown(server.close)
  return server.url
}

async function fastifyServer(t: ExecutionContext, trustProxy: boolean): Promise<string> {
  const app = Fastify({ trustProxy })
  await app.register(fastifySession, { manager: manager() })
  app.get('/', async (request) => {
    await request.session.set('views', 1)
    return { protocol: request.protocol }
  })
  t.teardown(() => app.close())
  return app.listen({ host: '127.0.0.1', port: 0 })
}

async function expressServer(t: ExecutionContext, trust: boolean): Promise<string> {
  const app = express()
  app.set('trust proxy', trust)
  app.use(manager().middleware())
  app.get('/', (req, res, next) => {
    req.session.set('views', 1).then(() => res.json({ protocol: req.protocol }), next)
  })
  const server = await listen(createServer(app))
  t.teardown(server.close)
  return server.url
}

test('koa with app.proxy = true: X-Forwarded-Proto https gives a Secure session cookie', async (t) => {
  const url = await koaServer(t, true)
  t.true(isSecure(await sessionCookie(t, url, FORWARDED)))
  t.false(isSecure(await sessionCookie(t, url, {})), 'plain http without the header stays without Secure')
})

test('koa without app.proxy: X-Forwarded-Proto is not trusted, no Secure', async (t) => {
  const url = await koaServer(t, false)
  t.false(isSecure(await sessionCookie(t, url, FORWARDED)))
})

test('fastify with trustProxy: true: X-Forwarded-Proto https gives a Secure session cookie', async (t) => {
  const url = await fastifyServer(t, true)
  t.true(isSecure(await sessionCookie(t, url, FORWARDED)))
  t.false(isSecure(await sessionCookie(t, url, {})))
})

test('fastify without trustProxy: X-Forwarded-Proto is not trusted, no Secure', async (t) => {
  const url = await fastifyServer(t, false)
  t.false(isSecure(await sessionCookie(t, url, FORWARDED)))
})

test("express with 'trust proxy': X-Forwarded-Proto https gives Secure; without it, none", async (t) => {
  t.true(isSecure(await sessionCookie(t, await expressServer(t, true), FORWARDED)))
  t.false(isSecure(await sessionCookie(t, await expressServer(t, false), FORWARDED)))
})

test("plain node:http keeps the identity's own trustProxy", async (t) => {
  for (const trustProxy of [true, false]) {
    const sessions = manager(trustProxy)
    const server = await listen(
      createServer((req, res) => {
        void Promise.resolve(sessions.resolve(req, res)).then(async (session) => {
          await session.set('views', 1)
          res.end('ok')
        })
      }),
    )
    t.teardown(server.close)
    t.is(isSecure(await sessionCookie(t, server.url, FORWARDED)), trustProxy, `trustProxy: ${trustProxy}`)
  }
})
