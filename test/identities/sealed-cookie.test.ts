import test from 'ava'
import { createDecipheriv, hkdfSync } from 'node:crypto'
import { SealedCookieIdentity, type CarriedSession, type SealedCookieIdentityOptions } from '../../identities/sealed-cookie.js'
import { isSessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import type { SessionData } from '../../src/types.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'

const NEW_KEY = 'newest-sealing-secret-0123456789abcdef'
const OLD_KEY = 'older-sealing-secret-0123456789abcdefg'

function identity(options: Partial<SealedCookieIdentityOptions> = {}): SealedCookieIdentity {
  return new SealedCookieIdentity({ keys: [NEW_KEY], secure: false, ...options })
}

function carried(data: SessionData, overrides: Partial<CarriedSession> = {}): CarriedSession {
  const now = Date.now()
  return { id: generateId(), data, createdAt: now, touchedAt: now, expiresAt: now + 3_600_000, absoluteExpiresAt: 0, version: 1, ...overrides }
}

/** Seal `session` with `sealer` and return the response and the cookie value it set. */
function sealed(sealer: SealedCookieIdentity, session: CarriedSession): { res: FakeResponse; value: string; line: string } {
  const res = new FakeResponse()
  sealer.seal(fakeRequest(), res, session)
  const cookie = res.cookies().get(sealer.cookieName)
  if (cookie === undefined) throw new Error('no cookie set')
  return { res, value: cookie.value, line: res.setCookies.at(-1)! }
}

function openValue(opener: SealedCookieIdentity, value: string, name = opener.cookieName) {
  return opener.open(fakeRequest({ cookie: `${name}=${value}` }))
}

test('a sealed session opens to exactly what was sealed, with its deadline as Expires', (t) => {
  const sealer = identity()
  const session = carried({ user: 'ada', cart: [1, 2, { n: 3 }] }, { absoluteExpiresAt: Date.now() + 7_200_000, version: 4 })
  const { res, value } = sealed(sealer, session)
  const cookie = res.cookies().get('session')!
  t.is(new Date(cookie.attributes.get('expires')!).getTime(), Math.floor(session.expiresAt / 1000) * 1000)
  t.true(cookie.attributes.has('httponly'))
  t.is(cookie.attributes.get('samesite'), 'lax')
  // Another process (a new identity with the same options) opens it: nothing is server-side.
  const opened = openValue(identity(), value)
  t.truthy(opened)
  t.false(opened!.olderKey)
  t.deepEqual({ ...opened!.session }, { ...session })
  t.true(Object.isFrozen(opened!.session.data))
  t.true(Object.isFrozen(opened!.session.data.cart))
})

test('the cookie is AES-256-GCM under a key derived with HKDF-SHA256 bound to the identity name, and reveals nothing', (t) => {
  const sealer = identity()
  const session = carried({ secret: 'plain-text-secret-value' })
  const { value } = sealed(sealer, session)
  const bytes = Buffer.from(value, 'base64url')
  t.false(bytes.toString('latin1').includes('plain-text-secret-value'))
  t.false(value.includes(session.id))
  t.is(bytes[0], 1, 'format byte')
  const key = Buffer.from(hkdfSync('sha256', NEW_KEY, 'caching-session-manager sealed-cookie v1', 'seal:sealed:session', 32))
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(5, 17))
  decipher.setAAD(Buffer.concat([bytes.subarray(0, 5), Buffer.from('sealed:session')]))
  decipher.setAuthTag(bytes.subarray(bytes.length - 16))
  const plaintext = Buffer.concat([decipher.update(bytes.subarray(17, bytes.length - 16)), decipher.final()]).toString('utf8')
  const [id, , , , , version, data] = JSON.parse(plaintext) as unknown[]
  t.is(id, session.id)
  t.is(version, 1)
  t.deepEqual(data, { secret: 'plain-text-secret-value' })
  // Two seals of the same session differ (a random nonce each).
  t.not(sealed(sealer, session).value, value)
})

test('values with ; , " emoji and U+2028 round-trip', (t) => {
  const sealer = identity()
  const data = {
    semi: 'a;b',
    comma: 'a,b',
    quote: 'say "hi"',
    emoji: '🍪🔐',
    separator: 'line\u2028next\u2029end',
    latin: 'ÿ€',
    nested: { 'k;"': ['\u0000', '\\'] },
  }
  const { value } = sealed(sealer, carried(data))
  t.regex(value, /^[A-Za-z0-9_-]+$/)
  t.deepEqual(openValue(identity(), value)?.session.data, data)
})

test('the newest key seals, older keys open and say so, a removed key opens nothing', (t) => {
  const before = identity({ keys: [OLD_KEY] })
  const session = carried({ user: 'ada' })
  const { value: old } = sealed(before, session)
  const rotated = identity({ keys: [NEW_KEY, OLD_KEY] })
  const opened = openValue(rotated, old)
  t.is(opened?.session.id, session.id)
  t.true(opened?.olderKey)
  t.is(rotated.stats().olderKey, 1)
  const { value: fresh } = sealed(rotated, session)
  t.false(openValue(identity({ keys: [NEW_KEY, OLD_KEY] }), fresh)?.olderKey)
  t.truthy(openValue(identity({ keys: [NEW_KEY] }), fresh), 'sealed with the newest key')
  const removed = identity({ keys: [NEW_KEY] })
  t.is(openValue(removed, old), undefined)
  t.is(removed.stats().unknownKey, 1)
})

test('a cookie sealed by another identity does not open, whatever its name on the wire', (t) => {
  const shop = identity({ name: 'shop' })
  const admin = identity({ name: 'admin' })
  const { value } = sealed(shop, carried({ role: 'customer' }))
  t.is(openValue(admin, value, 'admin'), undefined)
  t.is(admin.stats().rejected, 1)
  t.truthy(openValue(shop, value, 'shop'))
})

test('the size guard counts name, value and attributes exactly, and refuses before the response changes', (t) => {
  const roomy = identity({ maxBytes: 16_384, domain: 'localhost', path: '/app', priority: 'high' })
  const session = carried({ blob: 'x'.repeat(2000) })
  const { line } = sealed(roomy, session)
  const length = Buffer.byteLength(line)
  t.true(line.includes('domain=localhost') && line.includes('priority=high') && line.includes('expires='))
  const exact = identity({ maxBytes: length, domain: 'localhost', path: '/app', priority: 'high' })
  t.notThrows(() => sealed(exact, session))
  const tight = identity({ maxBytes: length - 1, domain: 'localhost', path: '/app', priority: 'high' })
  const res = new FakeResponse()
  const first = carried({ small: 1 })
  tight.seal(fakeRequest(), res, first)
  const before = res.setCookies
  const error = t.throws(() => tight.seal(fakeRequest(), res, session))
  t.true(isSessionError(error, 'SESSION_TOO_LARGE'), String(error))
  t.regex(error.message, new RegExp(`${length} bytes, over maxBytes \\(${length - 1}\\)`))
  t.deepEqual(res.setCookies, before, 'the response still carries the previous cookie')
  t.is(openValue(tight, res.cookies().get('session')!.value)?.session.id, first.id)
  t.is(tight.stats().tooLarge, 1)
})

test('the default maxBytes is 4096', (t) => {
  const sealer = identity()
  t.is(sealer.maxBytes, 4096)
  const error = t.throws(() => sealed(sealer, carried({ blob: 'x'.repeat(3100) })))
  t.true(isSessionError(error, 'SESSION_TOO_LARGE'))
  const { line } = sealed(sealer, carried({ blob: 'x'.repeat(2800) }))
  t.true(Buffer.byteLength(line) <= 4096)
})

test('sealing after the headers were sent throws SESSION_HEADERS_SENT and sets nothing', (t) => {
  const res = new FakeResponse()
  res.headersSent = true
  const error = t.throws(() => identity().seal(fakeRequest(), res, carried({ a: 1 })))
  t.true(isSessionError(error, 'SESSION_HEADERS_SENT'))
  t.deepEqual(res.setCookies, [])
})

test('a value is decrypted once per process, remembered by value in a bounded cache', (t) => {
  const writer = identity()
  const values = [1, 2, 3, 4, 5].map((n) => sealed(writer, carried({ n })).value)
  const reader = identity({ openedCacheSize: 2 })
  for (let i = 0; i < 5; i++) t.is(openValue(reader, values[0]!)?.session.data.n, 1)
  t.like(reader.stats(), { opened: 1, reused: 4 })
  // The 2 most recently used are always held: values[1] and values[2] again cost nothing.
  openValue(reader, values[1]!)
  openValue(reader, values[2]!)
  openValue(reader, values[1]!)
  openValue(reader, values[2]!)
  t.like(reader.stats(), { opened: 3, reused: 6 })
  // At most 4 (twice the size) are: after four others, values[0] is decrypted again.
  openValue(reader, values[3]!)
  openValue(reader, values[4]!)
  openValue(reader, values[0]!)
  t.like(reader.stats(), { opened: 6, reused: 6 })
  // What this identity sealed itself it never decrypts.
  const { value } = sealed(reader, carried({ n: 6 }))
  t.is(openValue(reader, value)?.session.data.n, 6)
  t.like(reader.stats(), { opened: 6, reused: 7, sealed: 1 })
})

test('of several cookies of the name, the first that opens and is accepted wins', (t) => {
  const sealer = identity()
  const a = carried({ n: 'a' })
  const b = carried({ n: 'b' })
  const va = sealed(sealer, a).value
  const vb = sealed(sealer, b).value
  const req = fakeRequest({ cookie: `session=garbage; session=${va}; session=${vb}` })
  t.is(sealer.open(req)?.session.id, a.id)
  t.is(sealer.open(req, (s) => s.id !== a.id)?.session.id, b.id)
  t.is(
    sealer.open(req, () => false),
    undefined,
  )
})

test('remove clears the cookie with its Path and Domain; matches follows host and path', (t) => {
  const sealer = identity({ host: 'app.example.com', path: '/app', domain: 'app.example.com' })
  const res = new FakeResponse()
  sealer.remove(fakeRequest({ host: 'app.example.com', url: '/app' }), res)
  const cookie = res.cookies().get('session')!
  t.is(cookie.value, '')
  t.is(new Date(cookie.attributes.get('expires')!).getTime(), 0)
  t.is(cookie.attributes.get('path'), '/app')
  t.is(cookie.attributes.get('domain'), 'app.example.com')
  t.true(sealer.matches(fakeRequest({ host: 'app.example.com', url: '/app/x' })))
  t.false(sealer.matches(fakeRequest({ host: 'other.example.com', url: '/app/x' })))
  t.false(sealer.matches(fakeRequest({ host: 'app.example.com', url: '/' })))
})

test('as a plain identity it carries no id, and writing an id is refused', (t) => {
  const sealer = identity()
  const { value } = sealed(sealer, carried({ a: 1 }))
  t.deepEqual([...sealer.get(fakeRequest({ cookie: `session=${value}` }))], [])
  const error = t.throws(() => sealer.set(fakeRequest(), new FakeResponse(), generateId(), Date.now() + 1000))
  t.true(isSessionError(error, 'SESSION_INVALID_STATE'))
  t.is(sealer.name, 'sealed:session')
})

test('construction: secrets of at least 32 characters, maxBytes and cookie attributes are checked, naming the option', (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [undefined, /options must be an object/],
    [{}, /option "keys" must be a non-empty array/],
    [{ keys: [] }, /option "keys" must be a non-empty array/],
    [{ keys: 'a'.repeat(40) }, /option "keys" must be a non-empty array/],
    [{ keys: ['a'.repeat(31)] }, /option "keys" must hold secrets of at least 32 characters/],
    [{ keys: [NEW_KEY, 'short'] }, /option "keys" must hold secrets of at least 32 characters/],
    [{ keys: [NEW_KEY, 42] }, /option "keys" must hold secrets/],
    [{ keys: [NEW_KEY], maxBytes: 100 }, /option "maxBytes" must be an integer from 256 to 16384/],
    [{ keys: [NEW_KEY], maxBytes: 4096.5 }, /option "maxBytes"/],
    [{ keys: [NEW_KEY], maxBytes: '4096' }, /option "maxBytes"/],
    [{ keys: [NEW_KEY], openedCacheSize: 0 }, /option "openedCacheSize"/],
    [{ keys: [NEW_KEY], name: 'bad name' }, /^SealedCookieIdentity option "name"/],
    [{ keys: [NEW_KEY], sameSite: 'none' }, /^SealedCookieIdentity option "sameSite"/],
    [{ keys: [NEW_KEY], name: '__Host-s' }, /^SealedCookieIdentity option "secure" must be true for a __Host- cookie name/],
    [{ keys: [NEW_KEY], verifiedCacheSize: 10 }, /no option "verifiedCacheSize"/],
  ]
  for (const [options, message] of bad) {
    const error = t.throws(() => new SealedCookieIdentity(options as SealedCookieIdentityOptions), { instanceOf: TypeError }, JSON.stringify(options))
    t.regex(error.message, message)
  }
  t.notThrows(() => new SealedCookieIdentity({ keys: ['k'.repeat(32)], name: '__Host-s', secure: true }))
})
