import test, { type ExecutionContext } from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionError } from '../../src/errors.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import type { SessionData } from '../../src/types.js'
import { MAX_KEY_LENGTH } from '../../src/values.js'
import { MemoryStorage } from '../../storages/memory.js'
import { fakeRequest, FakeResponse } from '../helpers/fake-http.js'
import { FaultStorage } from '../helpers/storage-double.js'

// Hostile keys and values given to session.set: each is stored and read back exactly (also by a
// fresh process, here a second manager on the same storage), or rejected at once with a typed
// error that leaves both the cache and the storage as they were.

const MAX_BYTES = 4096

async function setup() {
  const storage = new FaultStorage(new MemoryStorage())
  const options = { storage, identities: [new CookieIdentity({ secure: false })], maxSessionBytes: MAX_BYTES }
  const manager = new SessionManager(options)
  const res = new FakeResponse()
  const session = await manager.load(fakeRequest(), res)
  await session.set('base', 'kept')
  /** The session as another process would load it from storage. */
  const reload = async (): Promise<Session> => {
    const fresh = new SessionManager(options)
    return fresh.load(fakeRequest({ cookie: res.cookieHeader() }), new FakeResponse())
  }
  return { storage, manager, session, reload }
}

async function expectRejected(t: ExecutionContext, key: unknown, value: unknown, code: SessionError['code']): Promise<void> {
  const { storage, session, reload } = await setup()
  const before = storage.writes
  const error = await t.throwsAsync(session.set(key as string, value as never), { instanceOf: SessionError })
  t.is(error?.code, code)
  t.is(storage.writes, before, 'nothing was sent to the storage')
  t.deepEqual(session.getAll(), { base: 'kept' }, 'the cache is unchanged')
  t.deepEqual((await reload()).getAll(), { base: 'kept' }, 'the storage is unchanged')
  t.is(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false)
}

async function expectRoundTrip(t: ExecutionContext, key: string, value: unknown, expected: unknown = value): Promise<void> {
  const { session, reload } = await setup()
  await session.set(key, value as never)
  t.deepEqual(session.get(key), expected)
  const loaded = await reload()
  t.deepEqual(loaded.get(key), expected, 'a fresh process reads the same value')
  t.deepEqual(loaded.getAll(), session.getAll())
  t.is(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype untouched')
}

// ---- keys ----

const specialKeys = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf', '__defineGetter__', '__lookupSetter__', 'isPrototypeOf']

for (const key of specialKeys) {
  test(`key "${key}" reads as absent before it is set`, async (t) => {
    const { session } = await setup()
    t.is(session.get(key), undefined)
  })

  test(`key "${key}" is an ordinary key that survives storage`, async (t) => {
    await expectRoundTrip(t, key, { polluted: true })
  })
}

test('key "__proto__" written right after the session is created (coalesced into the first write) is stored', async (t) => {
  const storage = new FaultStorage(new MemoryStorage())
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })] })
  const res = new FakeResponse()
  const session = await manager.load(fakeRequest(), res)
  await Promise.all([session.set('a', 1), session.set('__proto__', { polluted: true }), session.set('constructor', 'c')])
  const loaded = await new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })] }).load(
    fakeRequest({ cookie: res.cookieHeader() }),
    new FakeResponse(),
  )
  t.deepEqual(loaded.get('__proto__'), { polluted: true })
  t.is(loaded.get('constructor'), 'c')
  t.is(Object.getPrototypeOf(loaded.getAll()), Object.prototype)
})

test('key "__proto__" removed right after a clear (coalesced) is gone from storage', async (t) => {
  const { session, reload } = await setup()
  await session.set('__proto__', 1)
  await Promise.all([session.clear(), session.set('__proto__', 2), session.remove('__proto__')])
  t.deepEqual(session.getAll(), {})
  t.deepEqual((await reload()).getAll(), {})
})

const keyCases: ReadonlyArray<[string, string]> = [
  ['a key with dots', 'a.b.c'],
  ['a key with a JSON path', '$.a[0]'],
  ['a key with quotes and backslashes', `"'\\`],
  ['a key with SQL', `x'); DROP TABLE sessions; --`],
  ['a key with a NUL', 'a\u0000b'],
  ['a key with a lone high surrogate', 'a\ud800b'],
  ['a key with a lone low surrogate', '\udfff'],
  ['a key of emoji', '🍪🔑'],
  [`a key of exactly ${MAX_KEY_LENGTH} characters`, 'k'.repeat(MAX_KEY_LENGTH)],
  ['a key that is a number in text', '0'],
  ['a key with spaces only', '   '],
]

for (const [title, key] of keyCases) {
  test(`${title} round-trips`, async (t) => {
    await expectRoundTrip(t, key, 'v')
  })
}

const badKeys: ReadonlyArray<[string, unknown]> = [
  ['an empty key', ''],
  [`a key of ${MAX_KEY_LENGTH + 1} characters`, 'k'.repeat(MAX_KEY_LENGTH + 1)],
  ['a 1 MB key', 'k'.repeat(1024 * 1024)],
  ['a number key', 42],
  ['a symbol key', Symbol('s')],
  ['an object key', { toString: () => 'x' }],
  ['a null key', null],
  ['an undefined key', undefined],
  ['an array key', ['a']],
]

for (const [title, key] of badKeys) {
  test(`${title} is refused with SESSION_INVALID_KEY`, async (t) => {
    await expectRejected(t, key, 'v', 'SESSION_INVALID_KEY')
  })
}

test('get and remove with invalid keys answer without touching anything', async (t) => {
  const { session, storage } = await setup()
  t.is(session.get('' as never), undefined)
  const error = await t.throwsAsync(session.remove('k'.repeat(MAX_KEY_LENGTH + 1)), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_INVALID_KEY')
  t.is(storage.writes, 1)
})

// ---- values ----

function nested(depth: number): unknown {
  let value: unknown = 'leaf'
  for (let i = 0; i < depth; i++) value = { next: value }
  return value
}

function nestedArrays(depth: number): unknown {
  let value: unknown = []
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

const cyclic: Record<string, unknown> = { a: 1 }
cyclic['self'] = cyclic
const sparseHuge: unknown[] = []
sparseHuge[10_000_000] = 1
const sparseInside = { list: new Array(1_000_000) }
const throwingGetter = Object.defineProperty({}, 'x', {
  enumerable: true,
  get: () => {
    throw new Error('boom')
  },
})
const throwingToJSON = {
  toJSON: () => {
    throw new Error('boom')
  },
}
const hugeToJSON = { toJSON: () => 'x'.repeat(MAX_BYTES * 4) }
const throwingProxy = new Proxy(
  {},
  {
    ownKeys: () => {
      throw new Error('boom')
    },
  },
)

const invalidValues: ReadonlyArray<[string, unknown]> = [
  ['undefined', undefined],
  ['a function', () => 1],
  ['a symbol', Symbol('s')],
  ['a BigInt', 10n],
  ['a BigInt inside an object', { n: 1n }],
  ['a function inside an array', [1, () => 2]],
  ['a cycle', cyclic],
  ['nesting 101 deep', nested(101)],
  ['nesting 10 000 deep', nested(10_000)],
  ['arrays nested 5000 deep', nestedArrays(5000)],
  ['nesting 1 000 000 deep (JSON.stringify overflows)', nested(1_000_000)],
  ['a getter that throws', throwingGetter],
  ['a toJSON that throws', throwingToJSON],
  ['a proxy that throws', throwingProxy],
  ['a toJSON that returns undefined', { toJSON: () => undefined }],
]

for (const [title, value] of invalidValues) {
  test(`value: ${title} is refused with SESSION_INVALID_VALUE`, async (t) => {
    await expectRejected(t, 'k', value, 'SESSION_INVALID_VALUE')
  })
}

const tooLarge: ReadonlyArray<[string, unknown]> = [
  ['a string one byte over the limit', 'x'.repeat(MAX_BYTES + 1)],
  ['a 50 MB string', 'x'.repeat(50 * 1024 * 1024)],
  ['a string of 3-byte characters under the length limit but over the byte limit', '€'.repeat(Math.ceil(MAX_BYTES / 2))],
  ['control characters that serialize 6 bytes each', '\u0001'.repeat(Math.ceil(MAX_BYTES / 5))],
  ['a sparse array of 10 000 001 holes', sparseHuge],
  ['a sparse array of 1 000 000 holes inside an object', sparseInside],
  ['an array of 2^32-1 holes', new Array(2 ** 32 - 1)],
  ['many small strings', Array.from({ length: 2000 }, (_, i) => `s${i}`)],
  ['a toJSON that returns a huge string', hugeToJSON],
  ['an object with 100 000 keys', Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i]))],
]

for (const [title, value] of tooLarge) {
  test(`value: ${title} is refused with SESSION_TOO_LARGE`, async (t) => {
    await expectRejected(t, 'k', value, 'SESSION_TOO_LARGE')
  })
}

test('value: the write that takes the session over the limit is refused; earlier ones stay', async (t) => {
  const { session, storage, reload } = await setup()
  const chunk = 'x'.repeat(1000)
  await session.set('a', chunk)
  await session.set('b', chunk)
  await session.set('c', chunk)
  const writes = storage.writes
  const error = await t.throwsAsync(session.set('d', chunk + chunk), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_TOO_LARGE')
  t.is(storage.writes, writes)
  t.deepEqual(Object.keys((await reload()).getAll()).sort(), ['a', 'b', 'base', 'c'])
  // Replacing a value with a smaller one still works after a refusal.
  await session.set('a', 'small')
  t.is((await reload()).get('a'), 'small')
})

test('value: a refused first write of a new session creates nothing and issues no cookie', async (t) => {
  const storage = new FaultStorage(new MemoryStorage())
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })], maxSessionBytes: MAX_BYTES })
  const res = new FakeResponse()
  const session = await manager.load(fakeRequest(), res)
  await t.throwsAsync(session.set('k', 'x'.repeat(MAX_BYTES + 1)), { instanceOf: SessionError })
  t.is(res.getHeader('set-cookie'), undefined)
  t.is(storage.writes, 0)
  t.is(await storage.inner.length(), 0)
})

const roundTrips: ReadonlyArray<[string, unknown, unknown]> = [
  ['a lone high surrogate', '\ud800', '\ud800'],
  ['a lone low surrogate in an object', { s: 'a\udfffb' }, { s: 'a\udfffb' }],
  ['reversed surrogates', '\udc00\ud800', '\udc00\ud800'],
  ['NUL and control characters', '\u0000\u0001\u001f\u007f', '\u0000\u0001\u001f\u007f'],
  ['U+2028 and U+2029', '\u2028\u2029', '\u2028\u2029'],
  ['nesting 99 deep', nested(99), nested(99)],
  ['an object with a JSON __proto__ key', JSON.parse('{"__proto__":{"polluted":true}}'), JSON.parse('{"__proto__":{"polluted":true}}')],
  ['constructor.prototype', { constructor: { prototype: { polluted: true } } }, { constructor: { prototype: { polluted: true } } }],
  ['NaN (JSON has none)', NaN, null],
  ['Infinity (JSON has none)', Infinity, null],
  ['negative zero', -0, 0],
  ['a Date (its JSON form)', new Date(0), '1970-01-01T00:00:00.000Z'],
  ['a Map (its JSON form)', new Map([['a', 1]]), {}],
  ['undefined inside an object (dropped by JSON)', { a: undefined, b: 1 }, { b: 1 }],
  ['undefined inside an array (null in JSON)', [undefined, 1], [null, 1]],
  ['a small sparse array (holes become null)', [1, , 3], [1, null, 3]], // eslint-disable-line no-sparse-arrays
  ['the largest safe integer', Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ['a tiny float', 5e-324, 5e-324],
  ['an empty string', '', ''],
  ['a string that looks like JSON', '{"a":1}', '{"a":1}'],
]

for (const [title, value, expected] of roundTrips) {
  test(`value: ${title} round-trips as JSON`, async (t) => {
    await expectRoundTrip(t, 'k', value, expected)
  })
}

test('value: what set returns later is frozen, so the cache cannot drift from storage', async (t) => {
  const { session } = await setup()
  const value = { list: [1, 2] }
  await session.set('k', value)
  value.list.push(3)
  const got = session.get('k') as { list: number[] }
  t.deepEqual(got, { list: [1, 2] })
  t.throws(() => got.list.push(4))
  t.throws(() => {
    ;(session.getAll() as SessionData)['x'] = 1
  })
})
