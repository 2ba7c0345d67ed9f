import test from 'ava'
import { Batch, batchRounds, type StorageOperation } from '../../src/kit/index.js'

const expiresAt = 5000
const touch = (id: string): StorageOperation => ({ type: 'touch', id, expiresAt })
const update = (id: string, key: string): StorageOperation => ({ type: 'update', id, key, value: 1, expiresAt })

test('outcomes start false; done records whether each operation applied', (t) => {
  const batch = new Batch([touch('a'), touch('b')])
  t.deepEqual(batch.outcomes, [false, false])
  t.is(batch.pendingCount, 2)
  batch.done(0, true)
  batch.done(1, false)
  t.deepEqual(batch.outcomes, [true, false])
  t.is(batch.pendingCount, 0)
})

test('a failure fails the later operations of its session, not the earlier ones, not other sessions', (t) => {
  const batch = new Batch([update('a', 'x'), update('b', 'x'), update('a', 'y'), update('a', 'z'), update('b', 'y')])
  batch.done(0, true)
  const error = batch.fail(2, new Error('refused'))
  t.is(batch.outcomes[0], true)
  t.is(batch.outcomes[2], error)
  t.is(batch.outcomes[3], error, 'the later operation of the same session gets the same error')
  t.false(batch.isPending(3))
  t.true(batch.isPending(1))
  t.true(batch.isPending(4))
  t.deepEqual(
    [...batch.entries()].map(([index]) => index),
    [1, 4],
  )
})

test('a failure settled earlier is not overwritten; a thrown non-Error becomes an Error', (t) => {
  const batch = new Batch([touch('a'), touch('a')])
  const first = batch.fail(0, 'a string')
  t.true(first instanceof Error)
  t.is(first.message, 'a string')
  batch.done(1, true)
  t.is(batch.outcomes[1], first)
})

test('applyEach applies in order and propagates a failure mid-way', async (t) => {
  const seen: number[] = []
  const batch = new Batch([update('a', '1'), update('b', '1'), update('a', '2'), update('b', '2')])
  await batch.applyEach(async (op, index) => {
    seen.push(index)
    if (index === 0) throw new Error('boom')
    return op.id === 'b'
  })
  t.deepEqual(seen, [0, 1, 3], 'the operation after the failed one of the same session is never applied')
  t.true(batch.outcomes[0] instanceof Error)
  t.is(batch.outcomes[2], batch.outcomes[0])
  t.deepEqual([batch.outcomes[1], batch.outcomes[3]], [true, true])
})

test('applyEachSync does the same for synchronous work', (t) => {
  const batch = new Batch([update('a', '1'), update('a', '2'), touch('b')])
  batch.applyEachSync((op) => {
    if (op.type === 'update' && op.key === '1') throw new TypeError('bad value')
    return true
  })
  t.true(batch.outcomes[0] instanceof TypeError)
  t.is(batch.outcomes[1], batch.outcomes[0])
  t.is(batch.outcomes[2], true)
})

test('failAll fails what is pending and keeps what was settled', (t) => {
  const batch = new Batch([touch('a'), touch('b'), touch('c')])
  batch.done(0, true)
  batch.failAll(new Error('unreachable'))
  t.is(batch.outcomes[0], true)
  t.true(batch.outcomes[1] instanceof Error)
  t.true(batch.outcomes[2] instanceof Error)
  t.is(batch.pendingCount, 0)
})

test('rounds hold one operation per session each, in order, and leave settled operations out', (t) => {
  const ops = [update('a', '1'), update('b', '1'), update('a', '2'), update('a', '3'), update('c', '1')]
  t.deepEqual(
    batchRounds(ops).map((round) => round.map(([index]) => index)),
    [[0, 1, 4], [2], [3]],
  )
  const batch = new Batch(ops)
  batch.fail(2, new Error('x'))
  t.deepEqual(
    batch.rounds().map((round) => round.map(([index]) => index)),
    [[0, 1, 4]],
  )
})

test('an entry that is not an operation does not take another session down with it', (t) => {
  const batch = new Batch([null as never, touch('a')])
  batch.fail(0, new Error('not an operation'))
  t.true(batch.isPending(1))
})

test('a conflict settles the later operations of its session as conflicts, unapplied; other sessions go on', async (t) => {
  const conditional = (id: string, ifVersion: number): StorageOperation => ({ type: 'update', id, key: 'k', value: 1, expiresAt, ifVersion })
  const batch = new Batch([conditional('a', 1), conditional('b', 1), conditional('a', 2), touch('a'), conditional('b', 2)])
  const seen: number[] = []
  await batch.applyEach((op, index) => {
    seen.push(index)
    return index === 0 ? 'conflict' : true
  })
  t.deepEqual(seen, [0, 1, 4], 'nothing after the conflict of a was applied')
  t.deepEqual(batch.outcomes, ['conflict', true, 'conflict', 'conflict', true])
  t.is(batch.pendingCount, 0)
})

test('a conflict reported for an operation already settled changes nothing', (t) => {
  const batch = new Batch([touch('a'), touch('a')])
  batch.done(0, true)
  batch.done(0, 'conflict')
  t.deepEqual(batch.outcomes, [true, false])
  t.true(batch.isPending(1))
})
