import test from 'ava'
import { Sealer } from '../../identities/seal.js'
import { SealedCookieIdentity } from '../../identities/sealed-cookie.js'
import { generateId } from '../../src/ids.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'

// Hostile Cookie headers against a sealed cookie identity: each must be no session, counted,
// and never a throw. A real sealed value is the starting point of every mutation.

const KEY = 'hostile-test-sealing-secret-0123456789'
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

function identity(): SealedCookieIdentity {
  return new SealedCookieIdentity({ keys: [KEY], secure: false })
}

function realValue(): string {
  const res = new FakeResponse()
  const now = Date.now()
  identity().seal(fakeRequest(), res, {
    id: generateId(),
    data: { user: 'ada', admin: false },
    createdAt: now,
    touchedAt: now,
    expiresAt: now + 60_000,
    absoluteExpiresAt: 0,
    version: 1,
  })
  return res.cookies().get('session')!.value
}

// A value holding both a '-' and a '_', so its standard-alphabet spelling (with '+' and '/') is
// never the value itself: about one sealed value in 600 has neither, and then opened as itself.
let VALUE = realValue()
while (!VALUE.includes('-') || !VALUE.includes('_')) VALUE = realValue()

/** `cookie` opens nothing, throws nothing, and counts one more rejected value per value it carries. */
function refused(t: import('ava').ExecutionContext, sealer: SealedCookieIdentity, cookie: string, label: string): void {
  const before = sealer.stats()
  let opened: unknown
  t.notThrows(() => (opened = sealer.open(fakeRequest({ cookie }))), label)
  t.is(opened, undefined, label)
  t.is(sealer.stats().opened, before.opened, label)
}

test('the real value opens (the mutations below start from a good cookie)', (t) => {
  t.truthy(identity().open(fakeRequest({ cookie: `session=${VALUE}` })))
})

test('every changed character is refused', (t) => {
  const sealer = identity()
  let cases = 0
  for (let i = 0; i < VALUE.length; i++) {
    // Two replacements per position: one that changes the high bits, one that changes the low bits.
    const at = ALPHABET.indexOf(VALUE[i]!)
    for (const replacement of [ALPHABET[(at + 32) % 64]!, ALPHABET[at ^ 1]!]) {
      refused(t, sealer, `session=${VALUE.slice(0, i)}${replacement}${VALUE.slice(i + 1)}`, `position ${i} -> ${replacement}`)
      cases++
    }
  }
  t.is(sealer.stats().rejected, cases)
  t.true(sealer.stats().forged > 0 && sealer.stats().malformed > 0 && sealer.stats().unknownKey > 0)
})

test('every truncation and every extension is refused', (t) => {
  const sealer = identity()
  for (let length = 0; length < VALUE.length; length++) refused(t, sealer, `session=${VALUE.slice(0, length)}`, `first ${length} characters`)
  for (const tail of ['A', 'AA', 'AAAA', '=', '==', VALUE]) refused(t, sealer, `session=${VALUE}${tail}`, `extended by ${tail.slice(0, 8)}`)
})

test('not base64url, other alphabets, encodings and shapes are refused', (t) => {
  const sealer = identity()
  const standard = Buffer.from(VALUE, 'base64url').toString('base64')
  const cases: Array<[string, string]> = [
    ['empty value', 'session='],
    ['standard base64 with padding', `session=${standard}`],
    ['standard alphabet without padding', `session=${standard.replace(/=+$/, '')}`],
    ['spaces inside', `session=${VALUE.slice(0, 30)} ${VALUE.slice(30)}`],
    // Every character as %XX: a value without a '-' would otherwise be the real value unchanged.
    ['percent-encoded', `session=${[...VALUE].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('')}`],
    ['one character percent-encoded', `session=%${VALUE.charCodeAt(0).toString(16).toUpperCase()}${VALUE.slice(1)}`],
    ['a dot inside', `session=${VALUE.slice(0, 30)}.${VALUE.slice(31)}`],
    ['JSON', 'session={"user":"admin"}'],
    ['a bare session id', `session=${generateId()}`],
    ['non-ASCII', `session=${VALUE.slice(0, 30)}é${VALUE.slice(31)}`],
    ['reversed', `session=${[...VALUE].reverse().join('')}`],
  ]
  for (const [label, cookie] of cases) refused(t, sealer, cookie, label)
})

test('an oversized cookie is refused without being decoded', (t) => {
  const sealer = identity()
  refused(t, sealer, `session=${'A'.repeat(20_000)}`, '20 000 characters')
  refused(t, sealer, `session=${VALUE}${'A'.repeat(4096)}`, 'the real value padded past maxBytes')
  t.like(sealer.stats(), { oversized: 2, rejected: 2, malformed: 0 })
  // A huge header with the real cookie among many others still finds it.
  const noise = Array.from({ length: 200 }, (_, i) => `c${i}=${'x'.repeat(40)}`).join('; ')
  t.truthy(sealer.open(fakeRequest({ cookie: `${noise}; session=${VALUE}` })))
})

test('a value sealed under the right key but not holding a session record is refused', (t) => {
  const sealer = identity()
  const forger = new Sealer([KEY], sealer.name, 'keys')
  const now = Date.now()
  const good = [generateId(), now, now, now + 60_000, 0, 1, { a: 1 }]
  const deep: unknown[] = []
  let at = deep
  for (let i = 0; i < 120; i++) at.push((at = []))
  const payloads: Array<[string, string]> = [
    ['not JSON', 'not json'],
    ['an object', JSON.stringify({ id: good[0], data: {} })],
    ['too few fields', JSON.stringify(good.slice(0, 6))],
    ['too many fields', JSON.stringify([...good, 1])],
    ['an id of the wrong shape', JSON.stringify(['x', ...good.slice(1)])],
    ['version 0', JSON.stringify([...good.slice(0, 5), 0, good[6]])],
    ['a fractional version', JSON.stringify([...good.slice(0, 5), 1.5, good[6]])],
    ['data that is an array', JSON.stringify([...good.slice(0, 6), []])],
    ['data that is null', JSON.stringify([...good.slice(0, 6), null])],
    ['a timestamp that is a string', JSON.stringify([good[0], String(now), ...good.slice(2)])],
    ['a negative timestamp', JSON.stringify([good[0], -1, ...good.slice(2)])],
    ['data nested too deeply', JSON.stringify([...good.slice(0, 6), { deep }])],
  ]
  t.truthy(sealer.open(fakeRequest({ cookie: `session=${forger.seal(Buffer.from(JSON.stringify(good)))}` })), 'the well-formed control opens')
  for (const [label, payload] of payloads) refused(t, sealer, `session=${forger.seal(Buffer.from(payload))}`, label)
  t.is(sealer.stats().invalid, payloads.length)
})

test('a value sealed under another secret, or for another identity name under the same secret, is refused', (t) => {
  const sealer = identity()
  const now = Date.now()
  const plaintext = Buffer.from(JSON.stringify([generateId(), now, now, now + 60_000, 0, 1, {}]))
  refused(t, sealer, `session=${new Sealer(['another-secret-of-enough-length-0123'], sealer.name, 'keys').seal(plaintext)}`, 'another secret')
  refused(t, sealer, `session=${new Sealer([KEY], 'sealed:other', 'keys').seal(plaintext)}`, 'another identity name')
  refused(t, sealer, `session=${new Sealer([KEY], 'cookie:session', 'keys').seal(plaintext)}`, 'another kind of identity')
  t.is(sealer.stats().unknownKey, 3)
})

test('refused values are not remembered, so they cannot push good ones out of the cache', (t) => {
  const sealer = new SealedCookieIdentity({ keys: [KEY], secure: false, openedCacheSize: 1 })
  t.truthy(sealer.open(fakeRequest({ cookie: `session=${VALUE}` })))
  // Fifty forgeries, each one character of the tag changed to another character (so none can be
  // the real value, as a random last character could once make it).
  const at = VALUE.length - 8
  const original = ALPHABET.indexOf(VALUE[at]!)
  for (let i = 1; i <= 50; i++) sealer.open(fakeRequest({ cookie: `session=${VALUE.slice(0, at)}${ALPHABET[(original + i) % 64]!}${VALUE.slice(at + 1)}` }))
  t.truthy(sealer.open(fakeRequest({ cookie: `session=${VALUE}` })))
  t.like(sealer.stats(), { opened: 1, reused: 1, rejected: 50 })
})
