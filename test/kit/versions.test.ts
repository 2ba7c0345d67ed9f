import test from 'ava'
import { decideWrite, nextVersion, refusedWrite, versionProblem, type StorageOperation } from '../../src/kit/index.js'

// The one rule of conditional writes every storage decides with: a version table per
// operation type, against no live record and a live record at version 3.

const record = { data: {}, createdAt: 0, expiresAt: 1 }
const ops = (ifVersion: number | undefined): Record<string, StorageOperation> => ({
  set: { type: 'set', id: 'a', record, ifVersion },
  update: { type: 'update', id: 'a', key: 'k', value: 1, expiresAt: 1, ifVersion },
  remove: { type: 'remove', id: 'a', key: 'k', expiresAt: 1, ifVersion },
  delete: { type: 'delete', id: 'a', ifVersion },
})
const live = { version: 3 }

test('without ifVersion: set and delete apply whatever there is; update, remove and touch need a live record', (t) => {
  const { set, update, remove, delete: del } = ops(undefined)
  const touch: StorageOperation = { type: 'touch', id: 'a', expiresAt: 1 }
  for (const op of [set!, del!]) {
    t.is(decideWrite(op, undefined), 'apply', op.type)
    t.is(decideWrite(op, live), 'apply', op.type)
  }
  for (const op of [update!, remove!, touch]) {
    t.is(decideWrite(op, undefined), false, op.type)
    t.is(decideWrite(op, live), 'apply', op.type)
  }
})

test('ifVersion equal to the live version applies; another version conflicts', (t) => {
  for (const op of Object.values(ops(3))) t.is(decideWrite(op, live), 'apply', op.type)
  for (const version of [0, 2, 4]) for (const op of Object.values(ops(version))) t.is(decideWrite(op, live), 'conflict', `${op.type} at ${version}`)
})

test('no live record: update and remove answer false (missing wins over conflict), set applies only at 0, delete has nothing to delete', (t) => {
  for (const version of [0, 1, 7]) {
    const { set, update, remove, delete: del } = ops(version)
    t.is(decideWrite(update!, undefined), false)
    t.is(decideWrite(remove!, undefined), false)
    t.is(decideWrite(set!, undefined), version === 0 ? 'apply' : 'conflict')
    t.is(decideWrite(del!, undefined), 'apply')
  }
})

test('a conditional statement that changed nothing: false without a live record, true for a delete of nothing, conflict otherwise', (t) => {
  const { set, update, delete: del } = ops(3)
  t.is(refusedWrite(update!, undefined), false)
  t.is(refusedWrite(update!, { version: 4 }), 'conflict')
  t.is(refusedWrite(update!, live), 'conflict', 'at the version it asked for: the record changed between the statement and the read')
  t.is(refusedWrite(del!, undefined), true)
  t.is(refusedWrite(del!, { version: 4 }), 'conflict')
  t.is(refusedWrite(set!, undefined), 'conflict')
  t.is(refusedWrite(ops(0).set!, undefined), 'conflict')
})

test('an applied data write makes the version the live one plus one, 1 over none; ifVersion must be a non-negative integer', (t) => {
  t.is(nextVersion(undefined), 1)
  t.is(nextVersion(live), 4)
  for (const ok of [undefined, 0, 1, 2 ** 40]) t.is(versionProblem(ok), undefined)
  for (const bad of [-1, 1.5, Number.NaN, Infinity, '1', null]) t.is(typeof versionProblem(bad), 'string', String(bad))
})
