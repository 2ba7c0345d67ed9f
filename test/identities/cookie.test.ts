import test from 'ava'
import crypto from 'node:crypto'
import Keygrip from 'keygrip'
import { CookieIdentity, cookieValues } from '../../identities/cookie.js'
import { generateId } from '../../src/ids.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'
import { identityContract } from '../helpers/identity-contract.js'
import { TEST_KEY, testManager } from '../helpers/manager.js'
import { startHmacCount, hmacsDuring } from '../helpers/hmac-count.js'
import { GatedStorage } from '../helpers/storage-double.js'

const OLD_KEY = 'old-signing-key-0123456789abcdefgh'
const cookieOf = (res: FakeResponse) => ({ cookie: res.cookieHeader() })

identityContract('cookie (unsigned)', {
  create: () => new CookieIdentity(),
  inScope: { url: '/' },
  carry: cookieOf,
  present: (value) => ({ cookie: `sid=${value}` }),
  carriesVersion: true,
})

identityContract('cookie (signed, scoped)', {
  create: () => new CookieIdentity({ name: 'app', host: '*.example.com', path: '/app', keys: [TEST_KEY] }),
  inScope: { url: '/app/page', host: 'www.example.com' },
  outOfScope: { url: '/other', host: 'www.example.com' },
  carry: cookieOf,
  present: (value) => ({ cookie: `app=${value}` }),
  carriesVersion: true,
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
  const count = startHmacCount()
  let afterFirst = 0
  try {
    for (let i = 0; i < 100; i++) {
      t.deepEqual([...identity.get(fakeRequest({ cookie }))], [id])
      if (i === 0) afterFirst = count.hmacs
    }
  } finally {
    count.stop()
  }
  t.true(afterFirst > 0, 'the first request verifies the signature')
  t.is(count.hmacs, afterFirst, 'the 99 requests after it verify nothing again')
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

// ---- session versions in the cookie value ----

test('a version is written as <id>.<version>, signed as a whole with the newest key', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY, OLD_KEY] })
  const id = generateId()
  const res = new FakeResponse()
  identity.set(fakeRequest(), res, id, Date.now() + 60_000, 42)
  const cookies = res.cookies()
  t.is(cookies.get('sid')?.value, `${id}.42`)
  t.is(cookies.get('sid.sig')?.value, crypto.createHmac('sha256', TEST_KEY).update(`sid=${id}.42`).digest('base64url'))
  t.regex(res.setCookies[0]!, new RegExp(`^sid=${id}\\.42; path=/; expires=.*; samesite=lax; httponly$`))
  // Unsigned: the same value, no signature.
  const plain = new FakeResponse()
  new CookieIdentity().set(fakeRequest(), plain, id, Date.now() + 60_000, 0)
  t.deepEqual([...plain.cookies().keys()], ['sid'])
  t.is(plain.cookies().get('sid')?.value, `${id}.0`)
})

test('a cookie issued before versions (a bare signed id) still resolves, without a version', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const id = generateId()
  const req = fakeRequest({ cookie: signed('sid', id) })
  t.deepEqual([...identity.get(req)], [id])
  t.is(identity.versionOf(req, id), undefined)
  const res = new FakeResponse()
  identity.confirm(req, res, id, Date.now() + 60_000)
  t.deepEqual(res.setCookies, [], 'signed with the newest key: nothing to refresh')
})

test('a signed versioned cookie resolves to its id and version', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const id = generateId()
  for (const version of [0, 1, 9, 10, 999, Number.MAX_SAFE_INTEGER]) {
    const req = fakeRequest({ cookie: signed('sid', `${id}.${version}`) })
    t.deepEqual([...identity.get(req)], [id])
    t.is(identity.versionOf(req, id), version)
  }
})

test('a version is only believed with its own signature: forged, swapped or stripped versions are refused', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const id = generateId()
  const sig = (data: string) => new Keygrip([TEST_KEY], 'sha256').sign(data)
  const cases = [
    // a valid id with a version it was not signed with
    `sid=${id}.6; sid.sig=${sig(`sid=${id}.5`)}`,
    `sid=${id}.50; sid.sig=${sig(`sid=${id}.5`)}`,
    // the signature of the bare id reused for a versioned value, and the other way round
    `sid=${id}.5; sid.sig=${sig(`sid=${id}`)}`,
    `sid=${id}; sid.sig=${sig(`sid=${id}.5`)}`,
    // the version signed alone, or the id signed with another id's version
    `sid=${id}.5; sid.sig=${sig('sid=5')}`,
    `sid=${id}.5; sid.sig=${sig(`sid=${generateId()}.5`)}`,
    // signed with a key this identity does not know
    `sid=${id}.5; sid.sig=${new Keygrip(['another-key-that-is-long-enough-00'], 'sha256').sign(`sid=${id}.5`)}`,
  ]
  for (const cookie of cases) t.deepEqual([...identity.get(fakeRequest({ cookie }))], [], cookie)
  // The genuine one, after the forgeries: still accepted (nothing was remembered from them).
  const req = fakeRequest({ cookie: `sid=${id}.5; sid.sig=${sig(`sid=${id}.5`)}` })
  t.deepEqual([...identity.get(req)], [id])
  t.is(identity.versionOf(req, id), 5)
})

test('a correctly signed value with a malformed version part is refused before any HMAC', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const id = generateId()
  // (Whitespace around the whole value is trimmed, as for a bare id; inside it is refused.)
  const parts = ['', '01', '007', '-1', '+1', '-0', ' 1', '1 2', '1\t2', '1e3', '1.0', '0x1', '0b1', '1_000', 'NaN', 'Infinity']
  parts.push('9007199254740992', '9999999999999999', '12345678901234567', '1'.repeat(1000), '\uff11', '\u0663', '\u00b9', '1\u0000')
  const values = parts.map((part) => `${id}.${part}`)
  values.push(`${id}..1`, `${id}.1.`, `.${id}.1`, `${id.slice(1)}.12`, `${id}x.1`, `${id.slice(0, -1)}B.1`)
  for (const value of values) {
    const cookie = signed('sid', value)
    t.is(
      hmacsDuring(() => t.deepEqual([...identity.get(fakeRequest({ cookie }))], [], JSON.stringify(value))),
      0,
      `${JSON.stringify(value)}: no HMAC`,
    )
  }
})

test('one HMAC per distinct versioned cookie value; versionOf verifies nothing again', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const id = generateId()
  const first = signed('sid', `${id}.1`)
  const second = signed('sid', `${id}.2`)
  const firstCount = hmacsDuring(() => {
    for (let i = 0; i < 100; i++) {
      const req = fakeRequest({ cookie: first })
      t.deepEqual([...identity.get(req)], [id])
      t.is(identity.versionOf(req, id), 1)
      t.is(identity.versionOf(req, id), 1)
    }
  })
  t.true(firstCount > 0, 'the first request verifies the signature')
  const afterNewVersion = hmacsDuring(() => {
    for (let i = 0; i < 100; i++) {
      const req = fakeRequest({ cookie: second })
      t.deepEqual([...identity.get(req)], [id])
      t.is(identity.versionOf(req, id), 2)
    }
  })
  t.is(afterNewVersion, firstCount, 'a new version is a new value: verified once, like the first')
  t.is(
    hmacsDuring(() => {
      for (const cookie of [first, second]) t.is(identity.versionOf(fakeRequest({ cookie }), id), undefined, 'no get on that request: no version')
      const req = fakeRequest({ cookie: first })
      identity.get(req)
      t.is(identity.versionOf(req, id), 1)
    }),
    0,
    'both values are remembered',
  )
})

test('key rotation keeps the version: an old-key versioned cookie resolves and is re-signed with it', (t) => {
  const identity = new CookieIdentity({ name: 'app', path: '/shop', domain: 'example.com', keys: [TEST_KEY, OLD_KEY] })
  const id = generateId()
  const req = fakeRequest({ cookie: signed('app', `${id}.17`, OLD_KEY), host: 'www.example.com', url: '/shop' })
  t.deepEqual([...identity.get(req)], [id])
  t.is(identity.versionOf(req, id), 17)
  const res = new FakeResponse()
  identity.confirm(req, res, id, Date.now() + 60_000)
  const [value, sig] = res.setCookies
  t.regex(value!, new RegExp(`^app=${id}\\.17; path=/shop; expires=.*; domain=example.com; samesite=lax; httponly$`))
  t.is(sig!.split('; ')[0], `app.sig=${new Keygrip([TEST_KEY], 'sha256').sign(`app=${id}.17`)}`)
  // What the client holds now resolves with the same version, and is not re-signed again.
  const next = fakeRequest({ cookie: res.cookieHeader(), host: 'www.example.com', url: '/shop' })
  t.deepEqual([...identity.get(next)], [id])
  t.is(identity.versionOf(next, id), 17)
  const again = new FakeResponse()
  identity.confirm(next, again, id, Date.now() + 60_000)
  t.deepEqual(again.setCookies, [])
})

test('versions are remembered per request, whatever other requests resolve in between', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const a = generateId()
  const b = generateId()
  const reqA = fakeRequest({ cookie: signed('sid', `${a}.3`) })
  const reqA2 = fakeRequest({ cookie: signed('sid', `${a}.4`) })
  const reqB = fakeRequest({ cookie: signed('sid', b) })
  t.deepEqual([...identity.get(reqA)], [a])
  t.deepEqual([...identity.get(reqA2)], [a])
  t.deepEqual([...identity.get(reqB)], [b])
  t.is(identity.versionOf(reqA, a), 3)
  t.is(identity.versionOf(reqA2, a), 4)
  t.is(identity.versionOf(reqB, b), undefined)
  t.is(identity.versionOf(reqA, b), undefined)
})

test('several values: each candidate keeps its own version; one id sent twice gives the higher version', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const a = generateId()
  const b = generateId()
  const sig = (value: string) => new Keygrip([TEST_KEY], 'sha256').sign(`sid=${value}`)
  const req = fakeRequest({ cookie: `sid=${a}.3; sid=${b}.9; sid=garbage.1; sid.sig=${sig(`${a}.3`)}; sid.sig=${sig(`${b}.9`)}` })
  t.deepEqual([...identity.get(req)], [a, b])
  t.is(identity.versionOf(req, a), 3)
  t.is(identity.versionOf(req, b), 9)
  // A host cookie and a domain cookie of one session, at different versions.
  const twice = fakeRequest({ cookie: `sid=${a}.5; sid=${a}.12; sid=${a}; sid.sig=${sig(`${a}.5`)}; sid.sig=${sig(`${a}.12`)}; sid.sig=${sig(a)}` })
  t.deepEqual([...identity.get(twice)], [a, a, a])
  t.is(identity.versionOf(twice, a), 12)
  // Unsigned, the same rules.
  const plain = new CookieIdentity()
  const unsignedReq = fakeRequest({ cookie: `sid=${a}.5; sid=${b}; sid=${a}.7; sid=${b}.01` })
  t.deepEqual([...plain.get(unsignedReq)], [a, b, a])
  t.is(plain.versionOf(unsignedReq, a), 7)
  t.is(plain.versionOf(unsignedReq, b), undefined)
})

test('a forged version on a stored session costs no storage read and gets a fresh session', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage })
  const id = generateId()
  await storage.inner.set(id, { data: { secret: 1 }, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
  const genuine = new Keygrip([TEST_KEY], 'sha256').sign(`sid=${id}.1`)
  for (const cookie of [`sid=${id}.2; sid.sig=${genuine}`, `sid=${id}.01; sid.sig=${genuine}`, signed('sid', `${id}.-1`)]) {
    const session = await manager.load(fakeRequest({ cookie }), new FakeResponse())
    t.true(session.isNew, cookie)
  }
  t.is(storage.count('get'), 0)
  // The genuine versioned cookie reaches the session.
  const session = await manager.load(fakeRequest({ cookie: `sid=${id}.1; sid.sig=${genuine}` }), new FakeResponse())
  t.false(session.isNew)
  t.is(session.get('secret'), 1)
})

test('versions of frozen request objects are remembered too, and a reused request object forgets the old one', (t) => {
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const id = generateId()
  const frozen = Object.freeze(fakeRequest({ cookie: signed('sid', `${id}.8`) }))
  t.deepEqual([...identity.get(frozen)], [id])
  t.is(identity.versionOf(frozen, id), 8)
  // One object presented twice with other headers (a pooled request): only what it carries now counts.
  const headers: Record<string, string> = { cookie: signed('sid', `${id}.3`), host: 'localhost' }
  const reused = { headers, url: '/' }
  t.deepEqual([...identity.get(reused)], [id])
  t.is(identity.versionOf(reused, id), 3)
  headers.cookie = signed('sid', id)
  t.deepEqual([...identity.get(reused)], [id])
  t.is(identity.versionOf(reused, id), undefined)
  headers.cookie = ''
  t.deepEqual([...identity.get(reused)], [])
  t.is(identity.versionOf(reused, id), undefined)
  // Two cookie identities on one request each keep their own.
  const other = new CookieIdentity({ name: 'app', keys: [TEST_KEY] })
  const both = fakeRequest({ cookie: `${signed('sid', `${id}.1`)}; ${signed('app', `${id}.2`)}` })
  t.deepEqual([...identity.get(both)], [id])
  t.deepEqual([...other.get(both)], [id])
  t.is(identity.versionOf(both, id), 1)
  t.is(other.versionOf(both, id), 2)
})

test('withdraw takes back only its own id: the cookies of another identity on the same response, and a later id of its own, stay', (t) => {
  const sid = new CookieIdentity({ keys: [TEST_KEY] })
  const admin = new CookieIdentity({ name: 'adm', path: '/admin', keys: [OLD_KEY] })
  const req = fakeRequest()
  const res = new FakeResponse()
  const first = generateId()
  const other = generateId()
  admin.set(req, res, other, Date.now() + 60_000)
  sid.set(req, res, first, Date.now() + 60_000)
  const later = generateId()
  sid.set(req, res, later, Date.now() + 60_000) // a renew on the same response replaced it
  sid.withdraw(req, res, first)
  t.deepEqual([...res.cookies().keys()].sort(), ['adm', 'adm.sig', 'sid', 'sid.sig'], 'nothing of the first id was left to take back')
  sid.withdraw(req, res, later)
  t.deepEqual([...res.cookies().keys()].sort(), ['adm', 'adm.sig'])
  t.deepEqual([...admin.get(fakeRequest({ cookie: res.cookieHeader() }))], [other])
  // The last line gone, the header goes.
  admin.withdraw(req, res, other)
  t.is(res.getHeader('set-cookie'), undefined)
})

test('withdraw on a response without removeHeader leaves an empty Set-Cookie list', (t) => {
  const identity = new CookieIdentity()
  const headers = new Map<string, number | string | readonly string[]>()
  const res = {
    headersSent: false,
    getHeader: (name: string) => headers.get(name.toLowerCase()),
    setHeader: (name: string, value: number | string | readonly string[]) => headers.set(name.toLowerCase(), value),
  }
  const id = generateId()
  identity.set(fakeRequest(), res, id, Date.now() + 60_000)
  identity.withdraw(fakeRequest(), res, id)
  t.deepEqual(headers.get('set-cookie'), [])
})
