import test from 'ava'
import { SessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { WriteQueue } from '../../src/write-queue.js'
import { GatedStorage } from '../helpers/storage-double.js'

const later = Date.now() + 60_000
const record = (data: Record<string, number> = {}) => ({ data, createdAt: Date.now(), expiresAt: later })
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

test('one session: later writes wait for the one in flight and are coalesced per key', async (t) => {
  const storage = new GatedStorage()
  const queue = new WriteQueue(storage, { batching: false })
  const id = generateId()
  await queue.enqueue({ type: 'set', id, record: record() })
  storage.hold()
  const first = queue.enqueue({ type: 'update', id, key: 'a', value: 1, expiresAt: later })
  await tick()
  const waiting = [2, 3, 4].map((value) => queue.enqueue({ type: 'update', id, key: 'a', value, expiresAt: later }))
  const other = queue.enqueue({ type: 'update', id, key: 'b', value: 9, expiresAt: later })
  t.is(queue.pending, 3, 'the in-flight write, one for "a", one for "b"')
  t.is(queue.stats().coalesced, 2)
  storage.release()
  t.deepEqual(await Promise.all([first, ...waiting, other]), [true, true, true, true, true])
  t.deepEqual((await storage.inner.get(id))!.data, { a: 4, b: 9 })
  t.deepEqual(storage.calls.filter((c) => c.method === 'update').length, 3)
})

test('a queued whole-record set absorbs later updates; a delete absorbs everything', async (t) => {
  const storage = new GatedStorage()
  const queue = new WriteQueue(storage, { batching: false })
  const id = generateId()
  storage.hold()
  const inflight = queue.enqueue({ type: 'set', id, record: record({ x: 0 }) })
  await tick()
  const set = queue.enqueue({ type: 'set', id, record: record({ x: 1 }) })
  const folded = queue.enqueue({ type: 'update', id, key: 'y', value: 2, expiresAt: later })
  const removed = queue.enqueue({ type: 'remove', id, key: 'x', expiresAt: later })
  t.is(queue.pending, 2)
  storage.release()
  await Promise.all([inflight, set, folded, removed])
  t.deepEqual((await storage.inner.get(id))!.data, { y: 2 })

  storage.hold()
  const busy = queue.enqueue({ type: 'update', id, key: 'y', value: 3, expiresAt: later })
  await tick()
  const absorbed = queue.enqueue({ type: 'update', id, key: 'z', value: 4, expiresAt: later })
  const deleted = queue.enqueue({ type: 'delete', id })
  storage.release()
  t.true(await busy)
  t.false(await absorbed, 'a write a delete absorbed reports that no record kept it')
  t.true(await deleted)
  t.is(await storage.inner.get(id), undefined)
})

test('many sessions waiting go out in one batch, in order per session', async (t) => {
  const storage = new GatedStorage()
  const queue = new WriteQueue(storage, { concurrency: 1 })
  const ids = Array.from({ length: 50 }, () => generateId())
  storage.hold()
  const first = queue.enqueue({ type: 'set', id: ids[0]!, record: record() })
  await tick()
  const rest = ids
    .slice(1)
    .flatMap((id) => [
      queue.enqueue({ type: 'set', id, record: record({ n: 1 }) }),
      queue.enqueue({ type: 'update', id, key: 'n', value: 2, expiresAt: later }),
    ])
  storage.release()
  await Promise.all([first, ...rest])
  t.is(storage.count('batch'), 1)
  for (const id of ids.slice(1)) t.deepEqual((await storage.inner.get(id))!.data, { n: 2 })
})

test('batches are capped at maxBatchSize', async (t) => {
  const storage = new GatedStorage()
  const queue = new WriteQueue(storage, { concurrency: 1, maxBatchSize: 10 })
  storage.hold()
  const blocker = queue.enqueue({ type: 'set', id: generateId(), record: record() })
  await tick()
  const writes = Array.from({ length: 35 }, () => queue.enqueue({ type: 'set', id: generateId(), record: record() }))
  storage.release()
  await Promise.all([blocker, ...writes])
  t.is(storage.count('batch'), 4)
  t.is(queue.stats().operations, 36)
})

test('failures are retried with backoff, then rejected with the cause, with the later writes of that session', async (t) => {
  const storage = new GatedStorage()
  const failures: Array<[string, SessionError]> = []
  const queue = new WriteQueue(storage, { batching: false, retries: 2, retryDelay: 1, onFailure: (id, error) => failures.push([id, error]) })
  const id = generateId()
  await queue.enqueue({ type: 'set', id, record: record() })
  storage.failWrites = 100
  storage.hold()
  const failing = queue.enqueue({ type: 'update', id, key: 'a', value: 1, expiresAt: later })
  await tick()
  const after = queue.enqueue({ type: 'update', id, key: 'b', value: 1, expiresAt: later })
  storage.release()
  const error = await t.throwsAsync(failing, { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_STORAGE_FAILED')
  t.regex((error?.cause as Error).message, /update failed/)
  await t.throwsAsync(after, { instanceOf: SessionError })
  t.is(storage.count('update'), 3)
  t.is(failures.length, 1)
  t.is(failures[0]![0], id)
  t.is(queue.pending, 0)
  storage.failWrites = 0
  t.true(await queue.enqueue({ type: 'update', id, key: 'c', value: 1, expiresAt: later }), 'the lane works again')
})

test('a failed batch is retried whole and lands', async (t) => {
  const storage = new GatedStorage()
  const queue = new WriteQueue(storage, { concurrency: 1, retryDelay: 1 })
  storage.hold()
  const first = queue.enqueue({ type: 'set', id: generateId(), record: record() })
  await tick()
  const ids = Array.from({ length: 5 }, () => generateId())
  const writes = ids.map((id) => queue.enqueue({ type: 'set', id, record: record({ v: 1 }) }))
  storage.failWrites = 1
  storage.release()
  await Promise.all([first, ...writes])
  for (const id of ids) t.truthy(await storage.inner.get(id))
})

test('queue capacity is bounded', (t) => {
  const storage = new GatedStorage()
  storage.hold()
  const queue = new WriteQueue(storage, { maxPending: 2 })
  void queue.enqueue({ type: 'set', id: generateId(), record: record() })
  void queue.enqueue({ type: 'set', id: generateId(), record: record() })
  const error = t.throws(() => queue.assertCapacity(), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_QUEUE_FULL')
  t.is(error?.status, 503)
  storage.release()
})

test('idle and flush wait for every accepted write', async (t) => {
  const storage = new GatedStorage()
  const queue = new WriteQueue(storage)
  const id = generateId()
  storage.hold()
  let done = false
  void queue.enqueue({ type: 'set', id, record: record() }).then(() => (done = true))
  const idle = queue.idle(id)
  const flushed = queue.flush()
  await tick()
  t.true(queue.has(id))
  storage.release()
  await Promise.all([idle, flushed])
  t.true(done)
  t.false(queue.has(id))
  await queue.flush()
})

test('a session whose writes all landed is idle, and its next write starts from the version the cache has then', async (t) => {
  const storage = new GatedStorage()
  const versions = new Map<string, number>()
  const queue = new WriteQueue(storage, { batching: false, versionOf: (id) => versions.get(id) })
  // More sessions than the queue keeps idle lanes for, so idle ones are swept meanwhile.
  const ids = Array.from({ length: 1500 }, () => generateId())
  for (const id of ids) await queue.enqueue({ type: 'set', id, record: record() })
  for (const id of ids) t.false(queue.has(id))
  await queue.idle(ids[0]!)
  await queue.flush()
  for (const id of [ids[0]!, ids.at(-1)!]) {
    // The cache says another process wrote version 7 meanwhile: the round starts from it and conflicts (the storage has 1).
    versions.set(id, 7)
    const conflicts = queue.stats().conflicts
    t.true(await queue.enqueue({ type: 'update', id, key: 'a', value: 1, expiresAt: later }))
    t.is(queue.stats().conflicts, conflicts + 1, 'the write was conditional on the version the cache had when its round started')
    // Now the cache has the stored version: no conflict.
    versions.set(id, (await storage.inner.get(id))!.version)
    t.true(await queue.enqueue({ type: 'update', id, key: 'a', value: 2, expiresAt: later }))
    t.is(queue.stats().conflicts, conflicts + 1)
    t.deepEqual((await storage.inner.get(id))!.data, { a: 2 })
    t.false(queue.has(id))
  }
  t.is(queue.pending, 0)
})
