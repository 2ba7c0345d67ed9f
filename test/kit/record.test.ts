import test from 'ava'
import {
  checkOperation,
  checkRecordInput,
  isPlainObject,
  isSessionError,
  normalizeOperation,
  parseRecord,
  readRecord,
  type StorageOperation,
} from '../../src/kit/index.js'
import { isPlainObject as coreIsPlainObject } from '../../src/values.js'

const fields = { data: { a: 1 }, createdAt: 1000, expiresAt: 2000, version: 3 }

test('raw fields become a record; numeric strings (BIGINT, DynamoDB numbers) are numbers', (t) => {
  t.deepEqual(parseRecord(fields), fields)
  t.deepEqual(parseRecord({ ...fields, createdAt: '1000', expiresAt: '2000', version: '3', absoluteExpiresAt: '2500' }), { ...fields, absoluteExpiresAt: 2500 })
  t.deepEqual(parseRecord({ ...fields, version: 3n }), fields)
})

test('"no absolute deadline" comes out as a missing property, whether the backend said null or undefined', (t) => {
  for (const none of [null, undefined]) {
    const record = parseRecord({ ...fields, absoluteExpiresAt: none })
    t.false(typeof record === 'string')
    t.false(Object.hasOwn(record as object, 'absoluteExpiresAt'))
  }
})

const unusable: ReadonlyArray<[string, unknown, RegExp]> = [
  ['data that is an array', { ...fields, data: [1] }, /data is not a JSON object/],
  ['data that is a string', { ...fields, data: '{"a":1}' }, /data is not a JSON object/],
  ['data with a foreign prototype', { ...fields, data: Object.create({ admin: true }) as object }, /data is not a JSON object/],
  ['data missing', { ...fields, data: undefined }, /data is not a JSON object/],
  ['expiresAt missing', { ...fields, expiresAt: undefined }, /timestamps are missing/],
  ['createdAt NaN', { ...fields, createdAt: Number.NaN }, /timestamps are missing/],
  ['expiresAt a word', { ...fields, expiresAt: 'soon' }, /timestamps are missing/],
  ['expiresAt Infinity', { ...fields, expiresAt: Infinity }, /timestamps are missing/],
  ['absoluteExpiresAt a word', { ...fields, absoluteExpiresAt: 'never' }, /absolute deadline is not a number/],
  ['version missing', { ...fields, version: undefined }, /version is missing/],
  ['version fractional', { ...fields, version: 1.5 }, /version is missing/],
  ['version negative', { ...fields, version: -1 }, /version is missing/],
]

for (const [title, raw, problem] of unusable) {
  test(`a record with ${title} is SESSION_INVALID_RECORD naming the storage and the session`, (t) => {
    t.regex(parseRecord(raw as never) as string, problem)
    const error = t.throws(() => readRecord('example', raw as never, 'the-id'))
    t.true(isSessionError(error, 'SESSION_INVALID_RECORD'))
    t.regex(error.message, /^the example storage holds an unusable record/)
    t.is((error as { sessionId?: string }).sessionId, 'the-id')
  })
}

test('there is one isPlainObject: the kit re-exports the core one', (t) => {
  t.is(isPlainObject, coreIsPlainObject)
  t.true(isPlainObject({}))
  t.true(isPlainObject(Object.create(null)))
  t.false(isPlainObject([]))
  t.false(isPlainObject(new Date()))
  t.false(isPlainObject(null))
})

test('well-formed operations pass; malformed ones are SESSION_INVALID_OPERATION', (t) => {
  const expiresAt = 5000
  const good: StorageOperation[] = [
    { type: 'set', id: 'a', record: { data: {}, createdAt: 1, expiresAt } },
    { type: 'update', id: 'a', key: 'k', value: 1, expiresAt },
    { type: 'remove', id: 'a', key: 'k', expiresAt },
    { type: 'touch', id: 'a', expiresAt },
    { type: 'delete', id: 'a' },
  ]
  for (const op of good) t.is(checkOperation('example', op), undefined)
  const bad: unknown[] = [
    null,
    'set',
    { type: 'set', id: 1, record: { data: {}, createdAt: 1, expiresAt } },
    { type: 'set', id: 'a', record: { data: [], createdAt: 1, expiresAt } },
    { type: 'set', id: 'a', record: { data: {}, createdAt: 1, expiresAt: '5000' } },
    { type: 'set', id: 'a', record: { data: {}, createdAt: 1, expiresAt, absoluteExpiresAt: Number.NaN } },
    { type: 'update', id: 'a', key: 7, value: 1, expiresAt },
    { type: 'remove', id: 'a', key: 'k', expiresAt: Infinity },
    { type: 'touch', id: 'a' },
    { type: 'rename', id: 'a' },
  ]
  for (const op of bad) t.true(isSessionError(checkOperation('example', op as StorageOperation), 'SESSION_INVALID_OPERATION'), JSON.stringify(op))
  t.true(isSessionError(checkRecordInput('example', null as never), 'SESSION_INVALID_OPERATION'))
})

test('normalizeOperation turns a null absolute deadline into none and leaves everything else as it is', (t) => {
  const op: StorageOperation = { type: 'set', id: 'a', record: { data: {}, createdAt: 1, expiresAt: 2, absoluteExpiresAt: null as never } }
  const normalized = normalizeOperation(op) as Extract<StorageOperation, { type: 'set' }>
  t.false('absoluteExpiresAt' in normalized.record)
  const touch: StorageOperation = { type: 'touch', id: 'a', expiresAt: 2 }
  t.is(normalizeOperation(touch), touch)
  const set: StorageOperation = { type: 'set', id: 'a', record: { data: {}, createdAt: 1, expiresAt: 2, absoluteExpiresAt: 3 } }
  t.is(normalizeOperation(set), set)
})
