import test from 'ava'
import { SessionError } from '../../src/errors.js'
import { assertKey, freezeJson, MAX_DEPTH, normalizeValue } from '../../src/values.js'

test('primitives pass as they are, with their JSON size', (t) => {
  t.deepEqual(normalizeValue('k', 'héllo', 100), { value: 'héllo', bytes: 8 })
  t.deepEqual(normalizeValue('k', 12.5, 100), { value: 12.5, bytes: 4 })
  t.deepEqual(normalizeValue('k', true, 100), { value: true, bytes: 4 })
  t.deepEqual(normalizeValue('k', null, 100), { value: null, bytes: 4 })
  t.deepEqual(normalizeValue('k', Number.NaN, 100), { value: null, bytes: 4 })
})

test('lone surrogates round-trip', (t) => {
  const { value } = normalizeValue('k', { s: '\ud800x\udfff' }, 100)
  t.is((value as { s: string }).s, '\ud800x\udfff')
})

test('deep nesting is refused, not a stack overflow', (t) => {
  let deep: unknown = 1
  for (let i = 0; i < MAX_DEPTH + 5; i++) deep = [deep]
  t.is(t.throws(() => normalizeValue('k', deep, 1e6), { instanceOf: SessionError })?.code, 'SESSION_INVALID_VALUE')
  let deeper: unknown = 1
  for (let i = 0; i < 100_000; i++) deeper = { d: deeper }
  t.is(t.throws(() => normalizeValue('k', deeper, 1e7), { instanceOf: SessionError })?.code, 'SESSION_INVALID_VALUE')
})

test('a sparse array that would serialize huge is refused before it is built', (t) => {
  const sparse: unknown[] = []
  sparse[50_000_000] = 1
  t.is(t.throws(() => normalizeValue('k', { sparse }, 65_536), { instanceOf: SessionError })?.code, 'SESSION_TOO_LARGE')
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
