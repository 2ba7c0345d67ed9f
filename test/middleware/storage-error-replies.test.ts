import test, { type ExecutionContext } from 'ava'
import express from 'express'
import Fastify from 'fastify'
import Keygrip from 'keygrip'
import Koa from 'koa'
import { createServer } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import { isSessionError, STORAGE_UNAVAILABLE, type SessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { createFastifyPlugin } from '../../src/middleware/fastify.js'
import '../../src/middleware/koa.js'
import { SessionManager } from '../../src/session-manager.js'
import { MySQLStorage } from '../../storages/mysql.js'
import { listen, send, type Answer } from '../helpers/http-client.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'

// What an anonymous client learns when the storage fails: the default error replies of each
// framework (Fastify's JSON body, Express's development error page, Koa's status text) and a
// node:http handler that answers with err.message, in front of a real MySQL storage that
// cannot connect or is refused its login. The storage's text names a host, a port or a
// user: it must stay on `cause`, never in a reply.

const KEY = 'storage-error-test-signing-key-0123456789'
const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))

/** A real storage failure: what the storage's backend says, and what must never reach a client. */
interface Failure {
  readonly title: string
  readonly run: typeof test
  readonly storage: () => MySQLStorage
  /** The backend's own message, as the cause chain must still carry it. */
  readonly backend: RegExp
  /** Text of the backend's message that a reply must not contain. */
  readonly secrets: readonly string[]
}

const denied = new URL(MYSQL_URL)
denied.username = 'intruder'
denied.password = 'not-the-password'

const failures: readonly Failure[] = [
  {
    title: 'connection refused',
    run: test,
    storage: () => new MySQLStorage({ uri: 'mysql://root@127.0.0.1:1/test' }),
    backend: /ECONNREFUSED 127\.0\.0\.1:1/,
    secrets: ['ECONNREFUSED', '127.0.0.1:1', 'mysql', 'connect'],
  },
  {
    title: 'access denied',
    run: mysqlTest,
    storage: () => new MySQLStorage({ uri: denied.href }),
    backend: /Access denied for user 'intruder'/,
    secrets: ['Access denied', 'intruder', 'using password', 'mysql'],
  },
]

/** A Cookie header with a well-signed id the cache does not hold: the manager must read the storage. */
function signedCookie(): string {
  const id = generateId()
  return `sid=${id}; sid.sig=${new Keygrip([KEY], 'sha256').sign(`sid=${id}`)}`
}

/** A manager on `storage` whose failures are collected as the `error` event reports them. */
function managerOn(t: ExecutionContext, storage: MySQLStorage): { manager: SessionManager; errors: SessionError[] } {
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ keys: [KEY] })], writeRetries: 0, retryDelay: 0 })
  const errors: SessionError[] = []
  manager.on('error', (error) => errors.push(error))
  t.teardown(() => manager.close().catch(() => undefined))
  return { manager, errors }
}

/** A reply to an anonymous client carries a 503 and nothing of the storage's own message. */
function assertPublic(t: ExecutionContext, answer: Answer, failure: Failure): void {
  t.is(answer.status, 503)
  for (const secret of failure.secrets) t.false(answer.body.includes(secret), `the reply leaks "${secret}": ${answer.body.slice(0, 300)}`)
}

/** The error keeps the backend's message on its cause chain, for logs. */
function assertCause(t: ExecutionContext, error: unknown, failure: Failure): void {
  t.true(isSessionError(error))
  const err = error as SessionError
  t.true(err.message.startsWith(STORAGE_UNAVAILABLE), err.message)
  const chain: string[] = []
  for (let cause: unknown = err.cause; cause instanceof Error; cause = cause.cause) chain.push(cause.message)
  t.regex(chain.join(' | '), failure.backend)
}

/** A handler that stores something in a new session: its write reaches the storage. */
const WRITE = '/write'

for (const failure of failures) {
  failure.run(`fastify, ${failure.title}: the default 503 replies say only that the session storage is unavailable`, async (t) => {
    const { manager } = managerOn(t, failure.storage())
    const app = Fastify()
    let thrown: unknown
    await app.register(createFastifyPlugin(manager))
    app.setErrorHandler((error, _request, reply) => {
      thrown = error
      // Fastify's own default handler, as if none were set.
      return reply.send(error)
    })
    app.get('/', async (request) => ({ views: request.session.get('views') ?? null }))
    app.get(WRITE, async (request) => {
      await request.session.set('views', 1)
      return { ok: true }
    })
    t.teardown(() => app.close())
    const url = await app.listen({ host: '127.0.0.1', port: 0 })

    const read = await send(url, { headers: { cookie: signedCookie() } })
    assertPublic(t, read, failure)
    t.is(read.json()['message'], `${STORAGE_UNAVAILABLE} (a session could not be read)`)
    t.is(read.json()['code'], 'SESSION_STORAGE_UNAVAILABLE')
    assertCause(t, thrown, failure)

    const write = await send(`${url}${WRITE}`)
    assertPublic(t, write, failure)
    t.is(write.json()['code'], 'SESSION_STORAGE_FAILED')
    t.is(write.json()['message'], `${STORAGE_UNAVAILABLE} (a write was not acknowledged after 1 attempt)`)
    assertCause(t, thrown, failure)
  })

  failure.run(`express, ${failure.title}: the development error page shows no storage message`, async (t) => {
    const { manager, errors } = managerOn(t, failure.storage())
    const app = express()
    // Express's default error page shows err.stack in every env but production (where it shows
    // the status text only); 'test' is such an env that does not also log the error.
    app.set('env', 'test')
    app.use(manager.middleware())
    app.get('/', (req, res) => {
      res.json({ views: req.session.get('views') ?? null })
    })
    app.get(WRITE, async (req, res) => {
      await req.session.set('views', 1)
      res.json({ ok: true })
    })
    const server = await listen(createServer(app))
    t.teardown(server.close)

    const read = await send(server.url, { headers: { cookie: signedCookie() } })
    assertPublic(t, read, failure)
    t.true(read.body.includes(STORAGE_UNAVAILABLE), 'the page shows the public message')

    const write = await send(`${server.url}${WRITE}`)
    assertPublic(t, write, failure)
    t.true(write.body.includes(STORAGE_UNAVAILABLE))
    assertCause(
      t,
      errors.find((error) => error.code === 'SESSION_STORAGE_FAILED'),
      failure,
    )
  })

  failure.run(`koa, ${failure.title}: the default 503 reply is the status text`, async (t) => {
    const { manager } = managerOn(t, failure.storage())
    const app = new Koa()
    const thrown: unknown[] = []
    app.on('error', (error: unknown) => thrown.push(error))
    app.use(manager.koa())
    app.use(async (ctx) => {
      if (ctx.path === WRITE) await ctx.session.set('views', 1)
      ctx.body = { views: ctx.session.get('views') ?? null }
    })
    const handle = app.callback()
    const server = await listen(createServer((req, res) => void handle(req, res)))
    t.teardown(server.close)

    const read = await send(server.url, { headers: { cookie: signedCookie() } })
    assertPublic(t, read, failure)
    t.is(read.body, 'Service Unavailable')
    const write = await send(`${server.url}${WRITE}`)
    assertPublic(t, write, failure)
    t.is(thrown.length, 2)
    for (const error of thrown) assertCause(t, error, failure)
  })

  failure.run(`node:http, ${failure.title}: a handler that answers with err.message leaks nothing`, async (t) => {
    const { manager } = managerOn(t, failure.storage())
    const sessions = manager.middleware()
    const caught: unknown[] = []
    const fail = (res: import('node:http').ServerResponse, err: unknown): void => {
      caught.push(err)
      res.statusCode = isSessionError(err) ? (err.status ?? 500) : 500
      res.end(err instanceof Error ? err.message : 'failed')
    }
    const server = await listen(
      createServer((req, res) => {
        sessions(req, res, async (err?: unknown) => {
          if (err !== undefined) return fail(res, err)
          try {
            const session = (req as import('../../src/middleware/node.js').RequestWithSession).session!
            if (req.url === WRITE) await session.set('views', 1)
            res.end(JSON.stringify({ views: session.get('views') ?? null }))
          } catch (error) {
            fail(res, error)
          }
        })
      }),
    )
    t.teardown(server.close)

    const read = await send(server.url, { headers: { cookie: signedCookie() } })
    assertPublic(t, read, failure)
    t.is(read.body, `${STORAGE_UNAVAILABLE} (a session could not be read)`)
    const write = await send(`${server.url}${WRITE}`)
    assertPublic(t, write, failure)
    t.is(write.body, `${STORAGE_UNAVAILABLE} (a write was not acknowledged after 1 attempt)`)
    for (const error of caught) assertCause(t, error, failure)
  })
}
