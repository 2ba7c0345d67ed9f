import test from 'ava'
import crypto from 'node:crypto'
import Keygrip from 'keygrip'
import { CookieIdentity, cookieValues } from '../../identities/cookie.js'
import { generateId } from '../../src/ids.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'
import { identityContract } from '../helpers/identity-contract.js'
import { TEST_KEY, testManager } from '../helpers/manager.js'
import { GatedStorage } from '../helpers/storage-double.js'

const OLD_KEY = 'old-signing-key-0123456789abcdefgh'
const cookieOf = (res: FakeResponse) => ({ cookie: res.cookieHeader() })

identityContract('cookie (unsigned)', {
  create: () => new CookieIdentity(),
  inScope: { url: '/' },
  carry: cookieOf,
  present: (value) => ({ cookie: `sid=${value}` }),
})

identityContract('cookie (signed, scoped)', {
  create: () => new CookieIdentity({ name: 'app', host: '*.example.com', path: '/app', keys: [TEST_KEY] }),
  inScope: { url: '/app/page', host: 'www.example.com' },
  outOfScope: { url: '/other', host: 'www.example.com' },
  carry: cookieOf,
  present: (value) => ({ cookie: `app=${value}` }),
})

function signed(name: string, id: string, key = TEST_KEY): string {
  return `${name}=${id}; ${name}.sig=${new Keygrip([key], 'sha256').sign(`${name}=${id}`)}`
}

test('signed cookies use HMAC-SHA256 and a bad or missing signature is no candidate', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const id = generateId()
  const expected = crypto.createHmac('sha256', TEST_KEY).update(`sid=${id}`).digest('base64url')
  t.deepEqual([...identity.get(fakeRequest({ cookie: `sid=${id}; sid.sig=${expected}` }))], [id])
  const other = generateId()
  const cases = [
    `sid=${id}`,
    `sid=${id}; sid.sig=`,
    `sid=${id}; sid.sig=${expected.slice(1)}`,
    `sid=${id}; sid.sig=${new Keygrip([TEST_KEY], 'sha1').sign(`sid=${id}`)}`,
    `sid=${id}; sid.sig=${new Keygrip([TEST_KEY], 'sha256').sign(`sid=${other}`)}`,
    `sid=${id}; sid.sig=${new Keygrip([TEST_KEY], 'sha256').sign(`other=${id}`)}`,
    `sid=${id}; sid.sig=${new Keygrip(['another-key-that-is-long-enough-00'], 'sha256').sign(`sid=${id}`)}`,
  ]
  for (const cookie of cases) t.deepEqual([...identity.get(fakeRequest({ cookie }))], [], cookie)
})

test('a badly signed cookie costs no storage read and gets a fresh session', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage })
  const id = generateId()
  await storage.inner.set(id, { data: { secret: 1 }, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
  const session = await manager.load(fakeRequest({ cookie: `sid=${id}; sid.sig=forged` }), new FakeResponse())
  t.true(session.isNew)
  t.is(storage.count('get'), 0)
  t.is(manager.stats().loads, 0)
})

test('all keys verify, the first signs, and an old-key cookie is re-signed keeping its attributes', (t) => {
  const identity = new CookieIdentity({ name: 'app', path: '/shop', domain: 'example.com', keys: [TEST_KEY, OLD_KEY] })
  const id = generateId()
  const req = fakeRequest({ cookie: signed('app', id, OLD_KEY), host: 'www.example.com', url: '/shop' })
  t.deepEqual([...identity.get(req)], [id])
  const res = new FakeResponse()
  identity.confirm(req, res, id, Date.now() + 60_000)
  const [value, sig] = res.setCookies
  t.regex(value!, new RegExp(`^app=${id}; path=/shop; expires=.*; domain=example.com; samesite=lax; httponly$`))
  t.is(sig, `app.sig=${new Keygrip([TEST_KEY], 'sha256').sign(`app=${id}`)}; path=/shop; ${sig!.split('; ').slice(2).join('; ')}`)
  // A cookie signed with the newest key is not re-sent.
  const fresh = new FakeResponse()
  const current = fakeRequest({ cookie: signed('app', id), host: 'www.example.com', url: '/shop' })
  t.deepEqual([...identity.get(current)], [id])
  identity.confirm(current, fresh, id, Date.now() + 60_000)
  t.deepEqual(fresh.setCookies, [])
})

test('one HMAC per distinct cookie value per process', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const id = generateId()
  const cookie = signed('sid', id)
  const original = crypto.createHmac
  let count = 0
  crypto.createHmac = (...args: Parameters<typeof crypto.createHmac>) => {
    count++
    return original(...args)
  }
  let afterFirst = 0
  try {
    for (let i = 0; i < 100; i++) {
      t.deepEqual([...identity.get(fakeRequest({ cookie }))], [id])
      if (i === 0) afterFirst = count
    }
  } finally {
    crypto.createHmac = original
  }
  t.true(afterFirst > 0, 'the first request verifies the signature')
  t.is(count, afterFirst, 'the 99 requests after it verify nothing again')
})

test('every value of a repeated cookie name is a candidate, in order; bad ones are skipped', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const a = generateId()
  const b = generateId()
  const sigA = new Keygrip([TEST_KEY], 'sha256').sign(`sid=${a}`)
  const sigB = new Keygrip([TEST_KEY], 'sha256').sign(`sid=${b}`)
  t.deepEqual([...identity.get(fakeRequest({ cookie: `sid=${a}; sid=${b}; sid.sig=${sigA}; sid.sig=${sigB}` }))], [a, b])
  t.deepEqual([...identity.get(fakeRequest({ cookie: `sid=garbage; sid=${b}; sid.sig=x; sid.sig=${sigB}` }))], [b])
  t.deepEqual([...identity.get(fakeRequest({ cookie: `sid=${b}; sid=garbage; sid.sig=${sigB}` }))], [b])
})

test('a cookie whose name ends like ours is not ours', (t) => {
  const identity = new CookieIdentity()
  const id = generateId()
  t.deepEqual([...identity.get(fakeRequest({ cookie: `xsid=${id}` }))], [])
  t.deepEqual([...identity.get(fakeRequest({ cookie: `a=b sid=${id}` }))], [])
  t.deepEqual([...identity.get(fakeRequest({ cookie: `a=b;sid=${id}` }))], [id])
  t.deepEqual([...identity.get(fakeRequest({ cookie: `sid="${id}"` }))], [id])
})

test('cookieValues caps how many values it collects', (t) => {
  const header = Array.from({ length: 5000 }, (_, i) => `sid=v${i}`).join('; ')
  t.is(cookieValues(header, 'sid=')!.length, 8)
  t.is(cookieValues('a=1', 'sid='), undefined)
})

test('secure: "auto" follows the request; true and false are fixed', (t) => {
  const id = generateId()
  const issue = (identity: CookieIdentity, req = fakeRequest()) => {
    const res = new FakeResponse()
    identity.set(req, res, id, Date.now() + 1000)
    return res.setCookies[0]!
  }
  t.notRegex(issue(new CookieIdentity()), /secure/)
  t.regex(issue(new CookieIdentity(), fakeRequest({ encrypted: true })), /; secure/)
  t.notRegex(issue(new CookieIdentity(), fakeRequest({ headers: { 'x-forwarded-proto': 'https' } })), /secure/)
  t.regex(issue(new CookieIdentity({ trustProxy: true }), fakeRequest({ headers: { 'x-forwarded-proto': 'https' } })), /; secure/)
  t.regex(issue(new CookieIdentity({ secure: true })), /; secure/)
  t.notRegex(issue(new CookieIdentity({ secure: false }), fakeRequest({ encrypted: true })), /secure/)
  t.regex(issue(new CookieIdentity()), /; samesite=lax; httponly$/)
  t.regex(issue(new CookieIdentity({ sameSite: 'none', secure: true, partitioned: true, priority: 'high' })), /samesite=none.*partitioned/)
  t.notRegex(issue(new CookieIdentity({ persistent: false })), /expires/)
})

test('impossible options throw a TypeError naming the option', (t) => {
  const cases: Array<[ConstructorParameters<typeof CookieIdentity>[0], RegExp]> = [
    [{ name: 'bad name' }, /"name"/],
    [{ name: 'a;b' }, /"name"/],
    [{ name: '' }, /"name"/],
    [{ sameSite: 'none' }, /"sameSite"/],
    [{ sameSite: 'none', secure: 'auto' }, /"sameSite"/],
    [{ sameSite: 'loose' as never }, /"sameSite"/],
    [{ secure: 'yes' as never }, /"secure"/],
    [{ partitioned: true }, /"partitioned"/],
    [{ name: '__Host-sid', secure: true, domain: 'example.com' }, /"domain"/],
    [{ name: '__Host-sid', secure: true, path: '/app' }, /"path"/],
    [{ name: '__Host-sid' }, /"secure"/],
    [{ name: '__Secure-sid', secure: false }, /"secure"/],
    [{ keys: [] }, /"keys"/],
    [{ keys: [''] }, /"keys"/],
    [{ keys: ['short'] }, /"keys"/],
    [{ keys: 'a-single-string-key-that-is-long-enough' as never }, /"keys"/],
    [{ domain: 'exa mple.com' }, /"domain"/],
    [{ domain: 'other.com', host: 'www.example.com' }, /"domain"/],
    [{ host: 'bad host' }, /"host"/],
    [{ host: [] }, /"host"/],
    [{ path: 'relative' }, /"path"/],
    [{ path: '/a;b' }, /"path"/],
    [{ priority: 'urgent' as never }, /"priority"/],
    [{ httpOnly: 'yes' as never }, /"httpOnly"/],
    [{ verifiedCacheSize: 0 }, /"verifiedCacheSize"/],
  ]
  for (const [options, message] of cases) t.throws(() => new CookieIdentity(options), { instanceOf: TypeError, message }, JSON.stringify(options))
  t.notThrows(() => new CookieIdentity({ name: '__Host-sid', secure: true }))
  t.notThrows(() => new CookieIdentity({ domain: 'example.com', host: ['example.com', '*.example.com'] }))
})
