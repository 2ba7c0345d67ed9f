import test from 'ava'
import { SessionError } from '../../src/errors.js'
import { valueLimits, type StorageLimits } from '../../src/kit/limits.js'
import { assertKey, freezeJson, MAX_DEPTH, normalizeValue } from '../../src/values.js'

const limits = (maxBytes: number, declared?: StorageLimits) => valueLimits(maxBytes, declared, 'test')
const nest = (depth: number): unknown => {
  let value: unknown = 1
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { a: value } : [value]
  return value
}

test('primitives pass as they are, with their JSON size', (t) => {
  t.deepEqual(normalizeValue('k', 'héllo', limits(100)), { value: 'héllo', bytes: 8 })
  t.deepEqual(normalizeValue('k', 12.5, limits(100)), { value: 12.5, bytes: 4 })
  t.deepEqual(normalizeValue('k', true, limits(100)), { value: true, bytes: 4 })
  t.deepEqual(normalizeValue('k', null, limits(100)), { value: null, bytes: 4 })
  t.deepEqual(normalizeValue('k', Number.NaN, limits(100)), { value: null, bytes: 4 })
})

test('lone surrogates round-trip', (t) => {
  const { value } = normalizeValue('k', { s: '\ud800x\udfff' }, limits(100))
  t.is((value as { s: string }).s, '\ud800x\udfff')
})

test('deep nesting is refused, not a stack overflow', (t) => {
  let deep: unknown = 1
  for (let i = 0; i < MAX_DEPTH + 5; i++) deep = [deep]
  t.is(t.throws(() => normalizeValue('k', deep, limits(1e6)), { instanceOf: SessionError })?.code, 'SESSION_INVALID_VALUE')
  let deeper: unknown = 1
  for (let i = 0; i < 100_000; i++) deeper = { d: deeper }
  t.is(t.throws(() => normalizeValue('k', deeper, limits(1e7)), { instanceOf: SessionError })?.code, 'SESSION_INVALID_VALUE')
})

test('a sparse array that would serialize huge is refused before it is built', (t) => {
  const sparse: unknown[] = []
  sparse[50_000_000] = 1
  t.is(t.throws(() => normalizeValue('k', { sparse }, limits(65_536)), { instanceOf: SessionError })?.code, 'SESSION_TOO_LARGE')
})

test('freezeJson freezes deeply', (t) => {
  const value = { a: [{ b: 1 }] }
  t.true(freezeJson(value, 0))
  t.true(Object.isFrozen(value.a[0]))
})

test('assertKey', (t) => {
  t.notThrows(() => assertKey('__proto__'))
  for (const key of ['', 5, 'x'.repeat(300), undefined]) t.throws(() => assertKey(key), { instanceOf: SessionError })
})

test("a storage's maxDepth: a value at the limit is taken, one level deeper refused, whatever mix of arrays and objects", (t) => {
  const mysql = limits(65_536, { maxDepth: 30 })
  t.notThrows(() => normalizeValue('k', nest(30), mysql))
  t.notThrows(() => normalizeValue('k', nest(MAX_DEPTH), limits(65_536)))
  const error = t.throws(() => normalizeValue('k', nest(31), mysql), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_INVALID_VALUE')
  t.regex(error?.message ?? '', /nested deeper than 30 levels, the most the storage holds/)
  t.is(t.throws(() => normalizeValue('k', nest(MAX_DEPTH + 1), limits(65_536)), { instanceOf: SessionError })?.code, 'SESSION_INVALID_VALUE')
})

test('wellFormedValues: a lone surrogate in a string, a nested string or a nested key is refused; well-formed pairs pass', (t) => {
  const strict = limits(65_536, { wellFormedKeys: true, wellFormedValues: true })
  for (const value of ['x\ud800', { s: 'a\udfff' }, ['ok', ['\ud83d']], { ['k\udc00']: 1 }]) {
    t.is(t.throws(() => normalizeValue('k', value, strict), { instanceOf: SessionError })?.code, 'SESSION_INVALID_VALUE', JSON.stringify(value))
  }
  t.deepEqual(normalizeValue('k', { s: '😀' }, strict).value, { s: '😀' })
  // Without the declaration, lone surrogates round-trip (JSON escapes them).
  t.is(normalizeValue('k', 'x\ud800', limits(100)).value, 'x\ud800')
})

test('wellFormedKeys: assertKey refuses a key with a lone surrogate only when the storage declares it', (t) => {
  const strict = limits(65_536, { wellFormedKeys: true })
  t.is(t.throws(() => assertKey('a\ud800', strict), { instanceOf: SessionError })?.code, 'SESSION_INVALID_KEY')
  t.notThrows(() => assertKey('a\ud800', limits(65_536)))
  t.notThrows(() => assertKey('a😀', strict))
})

test('valueLimits: a maxSessionBytes above what the storage holds, and bad declarations, are TypeErrors', (t) => {
  t.regex(
    t.throws(() => valueLimits(500_000, { maxDataBytes: 405_504 }, 'dynamodb'), { instanceOf: TypeError })?.message ?? '',
    /"maxSessionBytes" \(500000\) is more than the "dynamodb" storage holds/,
  )
  t.notThrows(() => valueLimits(405_504, { maxDataBytes: 405_504 }, 'dynamodb'))
  for (const maxDepth of [0, 101, 1.5, Number.NaN]) t.throws(() => valueLimits(100, { maxDepth }, 'x'), { instanceOf: TypeError })
  t.throws(() => valueLimits(100, { maxDataBytes: -1 }, 'x'), { instanceOf: TypeError })
})
