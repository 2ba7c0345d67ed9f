import test from 'ava'
import { Agent } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import { SealedCookieIdentity } from '../../identities/sealed-cookie.js'
import { isSessionError, type SessionError } from '../../src/errors.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import type { JsonValue } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { outcome, startApp, type Route } from '../helpers/app-server.js'
import { CookieJar, httpGet } from '../helpers/session-client.js'

// A manager whose sessions travel in a sealed cookie, over real node:http: the Session API,
// the size guard, expiry from the sealed timestamps, key rotation, hostile cookies, and a
// manager that mixes sealed and stored sessions by host.

const NEW_KEY = 'sealed-manager-newest-secret-0123456789'
const OLD_KEY = 'sealed-manager-older-secret-01234567890'
const MINUTE = 60_000

interface Setup {
  readonly manager: SessionManager
  readonly sealed: SealedCookieIdentity
  readonly clock: { now: number }
  readonly errors: SessionError[]
}

function setup(options: SessionManagerOptions = {}, keys: readonly string[] = [NEW_KEY], maxBytes?: number): Setup {
  const clock = { now: Date.now() }
  const sealed = new SealedCookieIdentity({ keys, secure: false, ...(maxBytes === undefined ? {} : { maxBytes }) })
  const manager = new SessionManager({ identities: [sealed], now: () => clock.now, ...options })
  const errors: SessionError[] = []
  manager.on('error', (err) => errors.push(err))
  return { manager, sealed, clock, errors }
}

/** Routes every test shares: a view counter, a peek, and one per Session method. */
const ROUTES: Record<string, Route> = {
  '/count': async (session) => {
    const views = Number(session.get('views') ?? 0) + 1
    await session.set('views', views)
    return { views, id: session.id, isNew: session.isNew, expiresAt: session.expiresAt ?? null }
  },
  '/peek': (session) => ({ views: session.get('views') ?? null, id: session.id, isNew: session.isNew, expiresAt: session.expiresAt ?? null }),
  '/set': async (session, query) => {
    const value = JSON.parse(query.get('value')!) as JsonValue
    const result = await outcome(session.set(query.get('key')!, value))
    return { result, data: session.getAll() }
  },
  '/remove': async (session, query) => ({ result: await outcome(session.remove(query.get('key')!)), data: session.getAll() }),
  '/clear': async (session) => ({ result: await outcome(session.clear()), data: session.getAll() }),
  '/renew': async (session) => {
    const before = session.id
    await session.renew()
    return { before, after: session.id, data: session.getAll() }
  },
  '/destroy': async (session) => {
    await session.destroy()
    return { destroyed: session.isDestroyed }
  },
}

function client(port: number) {
  const agent = new Agent({ keepAlive: false })
  const jar = new CookieJar()
  return {
    jar,
    async get(path: string, cookie?: string) {
      const header = cookie ?? jar.header()
      const answer = await httpGet(agent, port, path, header === '' ? {} : { cookie: header })
      if (cookie === undefined) jar.absorb(answer.setCookie)
      return { status: answer.status, body: JSON.parse(answer.body) as Record<string, unknown>, setCookie: answer.setCookie ?? [] }
    },
  }
}

test('a manager whose identities are all sealed needs no storage, warns about none, and stores nothing', async (t) => {
  const warnings: Error[] = []
  const onWarning = (warning: Error): number => warnings.push(warning)
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const { manager, sealed, errors } = setup()
  const app = await startApp(t, manager, ROUTES)
  const browser = client(app.port)
  const first = await browser.get('/count')
  t.like(first.body, { views: 1, isNew: true })
  t.regex(first.setCookie.join('\n'), /^session=[A-Za-z0-9_-]+; path=\/; expires=.+; samesite=lax; httponly/m)
  const second = await browser.get('/count')
  t.like(second.body, { views: 2, isNew: false, id: first.body.id })
  t.like((await browser.get('/peek')).body, { views: 2 })
  await new Promise((resolve) => setImmediate(resolve))
  t.deepEqual(
    warnings.map((w) => w.name + ': ' + w.message),
    [],
  )
  t.is(await (manager.storage as MemoryStorage).length(), 0, 'nothing server-side')
  t.like(manager.stats(), { created: 1, cached: 0, loads: 0, storageCalls: 0, operations: 0 })
  t.like(sealed.stats(), { sealed: 2, rejected: 0 })
  t.deepEqual(errors, [])
})

test('get is synchronous and a sealed value is opened once per process', async (t) => {
  const { manager, sealed } = setup()
  let kind = ''
  const app = await startApp(t, manager, {
    ...ROUTES,
    '/kind': (session: Session) => {
      const value = session.get('views')
      kind = value instanceof Promise ? 'promise' : typeof value
      return { kind }
    },
  })
  const browser = client(app.port)
  await browser.get('/count')
  for (let i = 0; i < 5; i++) t.like((await browser.get('/kind')).body, { kind: 'number' })
  // The cookie this process sealed is remembered as opened: five reads, no decryption.
  t.like(sealed.stats(), { opened: 0, reused: 5 })
  // Another process (a new identity) opens it once, then remembers it.
  const { manager: other, sealed: otherSealed } = setup()
  const otherApp = await startApp(t, other, ROUTES)
  const cookie = browser.jar.header()
  for (let i = 0; i < 3; i++) t.like((await client(otherApp.port).get('/peek', cookie)).body, { views: 1, isNew: false })
  t.like(otherSealed.stats(), { opened: 1, reused: 2 })
})

test('set, remove and clear resolve with the new cookie on the response; values beyond JSON are refused', async (t) => {
  const { manager } = setup()
  const app = await startApp(t, manager, {
    ...ROUTES,
    '/bad': async (session) => {
      const cycle: Record<string, unknown> = {}
      cycle.self = cycle
      return {
        fn: await outcome(session.set('fn', (() => 1) as unknown as JsonValue)),
        cycle: await outcome(session.set('cycle', cycle as JsonValue)),
        data: session.getAll(),
      }
    },
  })
  const browser = client(app.port)
  const tricky = { semi: 'a;b', comma: 'a,b', quote: 'say "hi"', emoji: '🍪🔐', separator: 'line\u2028next\u2029end' }
  const set = await browser.get(`/set?key=tricky&value=${encodeURIComponent(JSON.stringify(tricky))}`)
  t.like(set.body, { result: 'ok' })
  t.is(set.setCookie.length, 1)
  await browser.get('/set?key=other&value=1')
  t.deepEqual((await browser.get('/peek')).body.views, null)
  t.deepEqual((await browser.get('/remove?key=other')).body, { result: 'ok', data: { tricky } })
  t.deepEqual((await browser.get('/bad')).body, { fn: 'SESSION_INVALID_VALUE', cycle: 'SESSION_INVALID_VALUE', data: { tricky } })
  t.deepEqual((await browser.get('/set?key=x&value=1')).body, { result: 'ok', data: { tricky, x: 1 } })
  // A new process reads back exactly what was written.
  const { manager: other } = setup()
  const otherApp = await startApp(t, other, { '/all': (session) => session.getAll() })
  t.deepEqual((await client(otherApp.port).get('/all', browser.jar.header())).body, { tricky, x: 1 })
  t.deepEqual((await browser.get('/clear')).body, { result: 'ok', data: {} })
  t.deepEqual((await client(otherApp.port).get('/all', browser.jar.header())).body, {})
})

test('a write after the headers were sent rejects with SESSION_HEADERS_SENT and changes nothing', async (t) => {
  const { manager } = setup()
  const sessions = manager.middleware()
  const { createServer } = await import('node:http')
  const outcomes: string[] = []
  const server = createServer((req, res) => {
    sessions(req, res, async () => {
      const session = (req as typeof req & { session: Session }).session
      if (req.url === '/first') {
        await session.set('views', 1)
        res.end('ok')
        return
      }
      res.writeHead(200)
      res.write('partial ')
      outcomes.push(await outcome(session.set('views', 2)))
      outcomes.push(await outcome(session.clear()))
      outcomes.push(await outcome(session.renew()))
      outcomes.push(await outcome(session.destroy()))
      res.end(String(session.get('views')))
    })
  })
  const { listen } = await import('../helpers/http-client.js')
  const { url, close } = await listen(server)
  t.teardown(close)
  const first = await fetch(`${url}/first`)
  const cookie = first.headers.getSetCookie()[0]!.split(';')[0]!
  const late = await fetch(`${url}/late`, { headers: { cookie } })
  t.is(await late.text(), 'partial 1')
  t.deepEqual(outcomes, ['SESSION_HEADERS_SENT', 'SESSION_HEADERS_SENT', 'SESSION_HEADERS_SENT', 'SESSION_HEADERS_SENT'])
})

test('renew gives a new id and keeps the data; destroy clears the cookie', async (t) => {
  const { manager } = setup()
  const events: string[] = []
  manager.on('renew', () => events.push('renew'))
  manager.on('destroy', () => events.push('destroy'))
  const app = await startApp(t, manager, ROUTES)
  const browser = client(app.port)
  const counted = await browser.get('/count')
  const renewed = await browser.get('/renew')
  t.is(renewed.body.before, counted.body.id)
  t.not(renewed.body.after, counted.body.id)
  t.deepEqual(renewed.body.data, { views: 1 })
  t.like((await browser.get('/peek')).body, { id: renewed.body.after, views: 1 })
  const destroyed = await browser.get('/destroy')
  t.deepEqual(destroyed.body, { destroyed: true })
  t.regex(destroyed.setCookie[0]!, /^session=; path=\/; expires=Thu, 01 Jan 1970 00:00:00 GMT/)
  t.is(browser.jar.get('session'), undefined)
  t.like((await browser.get('/peek')).body, { isNew: true, views: null })
  t.deepEqual(events, ['renew', 'destroy'])
})

test('a write that would make the cookie longer than maxBytes rejects with SESSION_TOO_LARGE and keeps the previous data and cookie', async (t) => {
  const { manager, sealed } = setup({}, [NEW_KEY], 1024)
  const app = await startApp(t, manager, ROUTES)
  const browser = client(app.port)
  await browser.get('/set?key=small&value=1')
  const before = browser.jar.get('session')
  const big = JSON.stringify('x'.repeat(1000))
  const refused = await browser.get(`/set?key=big&value=${encodeURIComponent(big)}`)
  t.deepEqual(refused.body, { result: 'SESSION_TOO_LARGE', data: { small: 1 } })
  t.deepEqual(refused.setCookie, [], 'the response carries no new cookie')
  t.is(browser.jar.get('session'), before)
  // A first write that does not fit creates no session.
  const fresh = client(app.port)
  t.deepEqual((await fresh.get(`/set?key=big&value=${encodeURIComponent(big)}`)).body, { result: 'SESSION_TOO_LARGE', data: {} })
  t.is(fresh.jar.get('session'), undefined)
  t.is(sealed.stats().tooLarge, 2)
  // What fits goes through, and the Set-Cookie line is within maxBytes.
  const fits = await browser.get(`/set?key=big&value=${encodeURIComponent(JSON.stringify('x'.repeat(500)))}`)
  t.like(fits.body, { result: 'ok' })
  t.true(Buffer.byteLength(fits.setCookie[0]!) <= 1024)
})

test('maxAge is an idle deadline inside the seal: it slides, re-sealed at most once per touchAfter, and the cookie Expires follows', async (t) => {
  const { manager, clock } = setup({ maxAge: 600, touchAfter: 60 })
  const app = await startApp(t, manager, ROUTES)
  const browser = client(app.port)
  const created = await browser.get('/count')
  const expires = (line: string): number => Date.parse(/expires=([^;]+)/.exec(line)![1]!)
  t.is(expires(created.setCookie[0]!), Math.floor((created.body.expiresAt as number) / 1000) * 1000)
  clock.now += 30_000
  t.deepEqual((await browser.get('/peek')).setCookie, [], 'not re-sealed within touchAfter')
  clock.now += 40_000
  const touched = await browser.get('/peek')
  t.is(touched.setCookie.length, 1, 're-sealed once touchAfter passed')
  t.is(touched.body.expiresAt, clock.now + 600_000)
  t.is(expires(touched.setCookie[0]!), Math.floor((clock.now + 600_000) / 1000) * 1000)
  const stale = browser.jar.header()
  clock.now += 9 * MINUTE
  t.like((await browser.get('/peek')).body, { views: 1, isNew: false }, 'alive: the deadline slid')
  clock.now += 11 * MINUTE
  t.like((await browser.get('/peek')).body, { views: null, isNew: true }, 'idle past maxAge')
  // A cookie replayed past its sealed deadline opens nothing either.
  t.like((await browser.get('/peek', stale)).body, { isNew: true })
})

test('absoluteMaxAge is checked on every request from the sealed creation time, and a shortened configuration applies at once', async (t) => {
  const { manager, clock } = setup({ maxAge: 600, touchAfter: 0, absoluteMaxAge: 1200 })
  const expired: string[] = []
  manager.on('expire', (id) => expired.push(id))
  const app = await startApp(t, manager, ROUTES)
  const browser = client(app.port)
  const created = await browser.get('/count')
  for (let i = 0; i < 3; i++) {
    clock.now += 5 * MINUTE
    t.like((await browser.get('/peek')).body, { views: 1 })
  }
  clock.now += 5 * MINUTE + 1
  t.like((await browser.get('/peek')).body, { isNew: true }, 'past the absolute deadline, however active')
  t.deepEqual(expired, [created.body.id])
  // The same cookie under a manager configured with a shorter maxAge is expired already.
  const second = client(app.port)
  await second.get('/count')
  clock.now += 2 * MINUTE
  const shorter = setup({ maxAge: 60, touchAfter: 0 })
  shorter.clock.now = clock.now
  const shorterApp = await startApp(t, shorter.manager, ROUTES)
  t.like((await client(shorterApp.port).get('/peek', second.jar.header())).body, { isNew: true })
  const noAbsolute = setup({ maxAge: 600, absoluteMaxAge: 60 })
  noAbsolute.clock.now = clock.now
  const noAbsoluteApp = await startApp(t, noAbsolute.manager, ROUTES)
  t.like((await client(noAbsoluteApp.port).get('/peek', second.jar.header())).body, { isNew: true }, 'absoluteMaxAge added since')
})

test('a cookie sealed with an older key opens and is re-sealed with the newest in that response', async (t) => {
  const before = setup({}, [OLD_KEY])
  const beforeApp = await startApp(t, before.manager, ROUTES)
  const browser = client(beforeApp.port)
  await browser.get('/count')
  const oldCookie = browser.jar.header()
  const rotated = setup({}, [NEW_KEY, OLD_KEY])
  const rotatedApp = await startApp(t, rotated.manager, ROUTES)
  const rotatedBrowser = client(rotatedApp.port)
  const answer = await rotatedBrowser.get('/peek', oldCookie)
  t.like(answer.body, { views: 1, isNew: false })
  t.is(answer.setCookie.length, 1, 're-sealed on this response')
  t.like(rotated.sealed.stats(), { olderKey: 1 })
  const newCookie = answer.setCookie[0]!.split(';')[0]!
  const onlyNew = setup({}, [NEW_KEY])
  const onlyNewApp = await startApp(t, onlyNew.manager, ROUTES)
  t.like((await client(onlyNewApp.port).get('/peek', newCookie)).body, { views: 1, isNew: false })
  t.like((await client(onlyNewApp.port).get('/peek', oldCookie)).body, { isNew: true }, 'the removed key opens nothing')
})

test('hostile cookies are a new empty session, 200, counted, and nothing reaches the error event', async (t) => {
  const { manager, sealed, errors } = setup()
  const app = await startApp(t, manager, ROUTES)
  const browser = client(app.port)
  await browser.get('/count')
  const value = browser.jar.get('session')!
  const other = setup({}, ['another-application-secret-0123456789'])
  const otherApp = await startApp(t, other.manager, ROUTES)
  const foreign = client(otherApp.port)
  await foreign.get('/count')
  const flip = (s: string, at: number): string => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1)
  const hostile = [
    `session=${flip(value, 40)}`,
    `session=${value.slice(0, -5)}`,
    foreign.jar.header(),
    'session=not*base64!',
    `session=${'A'.repeat(8000)}`,
    `session=${value.slice(0, 20)}`,
  ]
  for (const cookie of hostile) {
    const answer = await client(app.port).get('/peek', cookie)
    t.is(answer.status, 200, cookie.slice(0, 40))
    t.like(answer.body, { isNew: true, views: null }, cookie.slice(0, 40))
  }
  t.is(sealed.stats().rejected, hostile.length)
  // A truncated value is `forged` when what is left still reads as base64url, `malformed` when its
  // length cannot (it depends on the sealed value's length): the two together are the four
  // changed, truncated, non-base64url and too-short cookies.
  const stats = sealed.stats()
  t.like(stats, { unknownKey: 1, oversized: 1 })
  t.is(stats.forged + stats.malformed, 4)
  t.true(stats.forged >= 1, 'the changed byte is forged')
  t.deepEqual(errors, [])
  // A write on such a request replaces the bad cookie with a good one.
  const replaced = await client(app.port).get('/count', hostile[0])
  t.like(replaced.body, { views: 1, isNew: true })
})

test('mixed identities: a signed cookie with a storage on one host, a sealed cookie on another; each session lives where its identity says', async (t) => {
  const storage = new MemoryStorage()
  const sealed = new SealedCookieIdentity({ keys: [NEW_KEY], host: 'cookie-only.test', secure: false })
  const stored = new CookieIdentity({ keys: [NEW_KEY], host: 'stored.test' })
  const manager = new SessionManager({ storage, identities: [stored, sealed] })
  const app = await startApp(t, manager, ROUTES)
  const agent = new Agent({ keepAlive: false })
  t.teardown(() => agent.destroy())
  const visit = async (host: string, jar: CookieJar) => {
    const answer = await httpGet(agent, app.port, '/count', jar.header() === '' ? { host } : { host, cookie: jar.header() })
    jar.absorb(answer.setCookie)
    return JSON.parse(answer.body) as Record<string, unknown>
  }
  const storedJar = new CookieJar()
  const sealedJar = new CookieJar()
  await visit('stored.test', storedJar)
  t.like(await visit('stored.test', storedJar), { views: 2 })
  await visit('cookie-only.test', sealedJar)
  t.like(await visit('cookie-only.test', sealedJar), { views: 2 })
  t.is(await storage.length(), 1, 'only the stored host wrote a record')
  t.truthy(storedJar.get('sid'))
  t.regex(sealedJar.get('session')!, /^[A-Za-z0-9_-]{100,}$/)
  // Each cookie is worth nothing on the other host.
  t.like(await visit('cookie-only.test', storedJar), { views: 1 })
})

test('a sealed session rejects writes once the manager is closed', async (t) => {
  const { manager } = setup()
  const { visit } = await import('../helpers/manager.js')
  const { session } = await visit(manager)
  await manager.close()
  const error = await t.throwsAsync(session.set('a', 1))
  t.true(isSessionError(error, 'SESSION_CLOSED'))
})

test('clear() of a sealed session with several keys seals the cookie once', async (t) => {
  const { manager, sealed } = setup()
  const app = await startApp(t, manager, ROUTES)
  const browser = client(app.port)
  for (const key of ['a', 'b', 'c']) t.like((await browser.get(`/set?key=${key}&value=1`)).body, { result: 'ok' })
  const before = sealed.stats().sealed
  const cleared = await browser.get('/clear')
  t.deepEqual(cleared.body, { result: 'ok', data: {} })
  t.is(cleared.setCookie.length, 1)
  t.is(sealed.stats().sealed - before, 1)
  t.deepEqual((await browser.get('/peek')).body.views, null)
  t.like((await browser.get('/set?key=a&value=2')).body, { result: 'ok', data: { a: 2 } })
  t.is(sealed.stats().sealed - before, 2, 'a later change seals again')
})
