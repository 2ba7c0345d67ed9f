import test from 'ava'
import { dataFromEntries, decodeData, decodeValue, encodeData, encodeValue, isSessionError, setOwn, type SessionData } from '../../src/kit/index.js'

test('values travel as JSON text', (t) => {
  t.is(encodeValue({ items: [1, 'two', null, true] }, 'cart'), '{"items":[1,"two",null,true]}')
  t.deepEqual(decodeValue('{"items":[1,"two",null,true]}'), { items: [1, 'two', null, true] })
  t.is(encodeData({ user: 'ada' }), '{"user":"ada"}')
})

test('what JSON cannot hold is SESSION_INVALID_VALUE naming the key', (t) => {
  const cycle: Record<string, unknown> = {}
  cycle['self'] = cycle
  for (const value of [10n, () => 1, undefined, Symbol('s'), cycle, { deep: 10n }]) {
    const error = t.throws(() => encodeValue(value, 'k'))
    t.true(isSessionError(error, 'SESSION_INVALID_VALUE'))
    t.regex(error.message, /"k"/)
  }
})

test('a size limit is SESSION_TOO_LARGE', (t) => {
  t.is(encodeValue('é', 'k', 4), '"é"')
  t.true(
    isSessionError(
      t.throws(() => encodeValue('éé', 'k', 4)),
      'SESSION_TOO_LARGE',
    ),
  )
  t.true(
    isSessionError(
      t.throws(() => encodeData({ text: 'x'.repeat(100) }, 50)),
      'SESSION_TOO_LARGE',
    ),
  )
})

test('-0 reads back as 0, as the manager caches it; other numbers are untouched', (t) => {
  t.true(Object.is(decodeValue('-0'), 0))
  t.true(Object.is((decodeValue('[-0, -0.0, -0e3]') as number[])[2], 0))
  t.deepEqual(decodeValue('[-0.5, -10, 0.25, "-0"]'), [-0.5, -10, 0.25, '-0'])
  t.is(encodeValue(-0, 'k'), '0')
})

test('__proto__ is an own key both ways, never the prototype', (t) => {
  const data = decodeData('{"__proto__":{"admin":true},"a":1}')!
  t.true(Object.hasOwn(data, '__proto__'))
  t.is(Object.getPrototypeOf(data), Object.prototype)
  t.is((data as { admin?: unknown }).admin, undefined)
  const fromEntries = dataFromEntries([
    ['__proto__', '{"admin":true}'],
    ['constructor', '"c"'],
  ])!
  t.true(Object.hasOwn(fromEntries, '__proto__'))
  t.deepEqual(fromEntries['__proto__'], { admin: true })
  const target: SessionData = {}
  setOwn(target, '__proto__', 1)
  t.true(Object.hasOwn(target, '__proto__'))
  t.is(encodeData(target), '{"__proto__":1}')
})

test('text that is not JSON, or not an object where data is expected, decodes to undefined', (t) => {
  t.is(decodeValue('{broken'), undefined)
  t.is(decodeValue(42), undefined)
  t.is(decodeData('[1]'), undefined)
  t.is(decodeData('"text"'), undefined)
  t.is(decodeData('null'), undefined)
  t.is(dataFromEntries([['a', '{broken']]), undefined)
  t.deepEqual(dataFromEntries([]), {})
})

test('keys with quotes, backslashes and lone surrogates survive', (t) => {
  const keys = ['quo"te', 'back\\slash', 'lone\ud800', 'new\nline']
  const data = dataFromEntries(keys.map((key) => [key, encodeValue(key, key)]))!
  t.deepEqual(Object.keys(data), keys)
  for (const key of keys) t.is(data[key], key)
})
