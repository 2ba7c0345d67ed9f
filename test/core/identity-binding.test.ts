import test, { type ExecutionContext } from 'ava'
import { Agent, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CookieIdentity } from '../../identities/cookie.js'
import { HeaderIdentity } from '../../identities/header.js'
import type { RequestWithSession } from '../../src/middleware/node.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { Identity } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { seedSession } from '../helpers/fake-http.js'
import { TEST_KEY } from '../helpers/manager.js'
import { httpGet } from '../helpers/session-client.js'

// A session opens only through the identity that issued it. The set-up is the README's (docs/
// identities.md "Several identities"): a shop cookie, an admin cookie, and header tokens on /api.

interface Answer {
  id: string
  identity: string | null
  isNew: boolean
  user: string | null
}

interface Running {
  storage: MemoryStorage
  /** GET `path` on `host` with `headers`; the JSON answer and the Set-Cookie lines. */
  get(host: string, path: string, headers?: Record<string, string>): Promise<{ answer: Answer; setCookie: readonly string[] }>
}

function identities(signed: boolean): Identity[] {
  const keys = signed ? [TEST_KEY] : undefined
  return [
    new CookieIdentity({ name: 'shop_sid', host: 'shop.example.com', keys, secure: false }),
    new CookieIdentity({ name: 'admin_sid', host: 'admin.example.com', path: '/admin', secure: true, keys }),
    new HeaderIdentity({ path: '/api' }),
  ]
}

async function start(t: ExecutionContext, signed: boolean, options: SessionManagerOptions = {}): Promise<Running> {
  const storage = new MemoryStorage()
  const manager = new SessionManager({ storage, identities: identities(signed), ...options })
  const sessions = manager.middleware()
  const server = createServer((req, res) =>
    sessions(req, res, async (err?: unknown) => {
      if (err !== undefined) {
        res.statusCode = 500
        res.end(String(err))
        return
      }
      const session = (req as RequestWithSession).session!
      const url = req.url ?? '/'
      if (url.endsWith('/login')) await session.set('user', 'ada')
      if (url.endsWith('/renew')) await session.renew()
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ id: session.id, identity: session.identity ?? null, isNew: session.isNew, user: session.get('user') ?? null }))
    }),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const agent = new Agent({ keepAlive: false })
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await manager.close()
  })
  return {
    storage,
    async get(host, path, headers = {}) {
      const response = await httpGet(agent, port, path, { host, ...headers })
      t.is(response.status, 200, response.body)
      return { answer: JSON.parse(response.body) as Answer, setCookie: response.setCookie ?? [] }
    },
  }
}

/** The Cookie header that sends back what `setCookie` set. */
function cookieOf(setCookie: readonly string[]): string {
  return setCookie.map((line) => line.split(';')[0]!).join('; ')
}

test('a session issued by the shop cookie does not open /api through the header identity', async (t) => {
  const app = await start(t, true)
  const login = await app.get('shop.example.com', '/login')
  t.is(login.answer.identity, 'cookie:shop_sid')
  // Its own identity opens it.
  const again = await app.get('shop.example.com', '/', { cookie: cookieOf(login.setCookie) })
  t.like(again.answer, { isNew: false, user: 'ada', id: login.answer.id })
  // The id replayed as a header token: a new, empty session, issued through the header.
  const stolen = await app.get('api.example.com', '/api/me', { 'x-session-token': login.answer.id })
  t.like(stolen.answer, { isNew: true, user: null, identity: 'header:x-session-token' })
  t.not(stolen.answer.id, login.answer.id)
  t.is((await app.storage.get(login.answer.id))?.issuer, 'cookie:shop_sid')
  t.is((await app.storage.get(login.answer.id))?.data['user'], 'ada', 'the refused session is left as it was')
})

test('with unsigned cookies, renaming shop_sid to admin_sid opens nothing on the admin host', async (t) => {
  const app = await start(t, false)
  const login = await app.get('shop.example.com', '/login')
  const renamed = await app.get('admin.example.com', '/admin', { cookie: `admin_sid=${login.answer.id}` })
  t.like(renamed.answer, { isNew: true, user: null, identity: 'cookie:admin_sid' })
  t.not(renamed.answer.id, login.answer.id)
  // A header token issued on /api does not open the shop either.
  const api = await app.get('api.example.com', '/api/login')
  const moved = await app.get('shop.example.com', '/', { cookie: `shop_sid=${api.answer.id}` })
  t.like(moved.answer, { isNew: true, user: null })
})

test('renew keeps the issuer: the new id opens through the same identity only', async (t) => {
  const app = await start(t, true)
  const login = await app.get('shop.example.com', '/login')
  const renewed = await app.get('shop.example.com', '/renew', { cookie: cookieOf(login.setCookie) })
  t.not(renewed.answer.id, login.answer.id)
  t.is((await app.storage.get(renewed.answer.id))?.issuer, 'cookie:shop_sid')
  t.like((await app.get('shop.example.com', '/', { cookie: cookieOf(renewed.setCookie) })).answer, { isNew: false, user: 'ada' })
  t.like((await app.get('api.example.com', '/api/me', { 'x-session-token': renewed.answer.id })).answer, { isNew: true, user: null })
})

test('shareSessions lets the named identities open each other’s sessions, and no other', async (t) => {
  const app = await start(t, false, { shareSessions: [['cookie:shop_sid', 'header:x-session-token']] })
  const login = await app.get('shop.example.com', '/login')
  const viaHeader = await app.get('api.example.com', '/api/me', { 'x-session-token': login.answer.id })
  t.like(viaHeader.answer, { isNew: false, user: 'ada', id: login.answer.id, identity: 'header:x-session-token' })
  const viaAdmin = await app.get('admin.example.com', '/admin', { cookie: `admin_sid=${login.answer.id}` })
  t.like(viaAdmin.answer, { isNew: true, user: null })
})

test('a session stored without an issuer (before it was recorded) opens through any identity', async (t) => {
  const app = await start(t, false)
  const id = await seedSession(app.storage, { user: 'ada' })
  t.is((await app.storage.get(id))?.issuer, undefined)
  t.like((await app.get('api.example.com', '/api/me', { 'x-session-token': id })).answer, { isNew: false, user: 'ada' })
  t.like((await app.get('admin.example.com', '/admin', { cookie: `admin_sid=${id}` })).answer, { isNew: false, user: 'ada' })
})

test('identities need distinct names, and shareSessions is checked', (t) => {
  const storage = new MemoryStorage()
  t.throws(() => new SessionManager({ storage, identities: [new CookieIdentity({ host: 'a.example' }), new CookieIdentity({ host: 'b.example' })] }), {
    instanceOf: TypeError,
    message: /"identities\[1\]" is named "cookie:sid" like another identity/,
  })
  const manager = new SessionManager({ storage, identities: [new CookieIdentity()] })
  t.throws(() => manager.setIdentityManager(new CookieIdentity()), { instanceOf: TypeError, message: /"identity" is named "cookie:sid"/ })
  for (const bad of ['cookie:sid', [['cookie:sid']], [['cookie:sid', 1]], [[]], {}]) {
    t.throws(() => new SessionManager({ storage, shareSessions: bad as never }), { instanceOf: TypeError, message: /"shareSessions"/ })
  }
  const unnamed = { ...new HeaderIdentity(), name: '', matches: () => true, get: () => [], set: () => {}, remove: () => {} }
  t.throws(() => new SessionManager({ storage, identities: [unnamed] }), { instanceOf: TypeError, message: /"identities\[0\]" must have a name/ })
})
