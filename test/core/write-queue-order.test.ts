import test from 'ava'
import { generateId } from '../../src/ids.js'
import { WriteQueue } from '../../src/write-queue.js'
import { GatedStorage } from '../helpers/storage-double.js'
import { testManager, visit } from '../helpers/manager.js'

// A retry keeps the writes of one key in order: a write retried after a failure is not
// overtaken by, and does not swallow, a newer write of the same key queued behind it, so the
// storage ends with the newest value, the same one the cache shows.

const later = Date.now() + 60_000
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Wait, one event-loop turn at a time (at most `turns`), until `condition` holds. */
async function until(condition: () => boolean, turns = 1000): Promise<void> {
  for (let i = 0; i < turns && !condition(); i++) await tick()
  if (!condition()) throw new Error('condition never held')
}

test('write queue: a write of a key made while an older write of that key waits for its retry lands last', async (t) => {
  const storage = new GatedStorage()
  const id = generateId()
  await storage.inner.set(id, { data: {}, createdAt: Date.now(), expiresAt: later })
  // A long first backoff, so the third write is surely made while the first waits for its retry.
  const queue = new WriteQueue(storage, { retries: 2, retryDelay: 400, batching: false })
  storage.hold()
  storage.failWrites = 1
  const first = queue.enqueue({ type: 'update', id, key: 'a', value: 1, expiresAt: later })
  await until(() => storage.heldCount === 1)
  const second = queue.enqueue({ type: 'update', id, key: 'a', value: 2, expiresAt: later })
  storage.release() // the first write fails once and is queued again, in front of the second
  await until(() => queue.stats().retries === 1)
  const third = queue.enqueue({ type: 'update', id, key: 'a', value: 3, expiresAt: later })
  t.deepEqual(await Promise.all([first, second, third]), [true, true, true], 'every write is acknowledged')
  t.is((await storage.inner.get(id))!.data['a'], 3, 'so the storage must hold the newest value')
})

test("manager: the storage keeps the last value set when it was set during an earlier write's retry backoff", async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, writeRetries: 2, retryDelay: 400 })
  const created = await visit(manager)
  await created.session.set('a', 0)
  const { session } = await visit(manager, created.cookie)
  storage.hold()
  storage.failWrites = 1
  const writes = [session.set('a', 1)]
  await until(() => storage.heldCount === 1)
  writes.push(session.set('a', 2))
  storage.release()
  await until(() => manager.stats().retries === 1)
  writes.push(session.set('a', 3))
  await Promise.all(writes)
  t.is(session.get('a'), 3, 'the cache shows the last value set')
  t.is((await storage.inner.get(session.id))!.data['a'], 3, 'and the storage, which a fresh process loads, must hold it too')
})

test('write queue: an update made while a retried whole-record set waits is not overwritten by an older queued update', async (t) => {
  const storage = new GatedStorage()
  const id = generateId()
  const queue = new WriteQueue(storage, { retries: 2, retryDelay: 400, batching: false })
  storage.hold()
  storage.failWrites = 1
  // The first write of a new session is a whole-record set; an update of its key waits behind it.
  const created = queue.enqueue({ type: 'set', id, record: { data: { a: 1 }, createdAt: Date.now(), expiresAt: later } })
  await until(() => storage.heldCount === 1)
  const second = queue.enqueue({ type: 'update', id, key: 'a', value: 2, expiresAt: later })
  storage.release()
  await until(() => queue.stats().retries === 1)
  // Folded into the queued set (the head), i.e. before the update of 2 that is queued after it.
  const third = queue.enqueue({ type: 'update', id, key: 'a', value: 3, expiresAt: later })
  t.deepEqual(await Promise.all([created, second, third]), [true, true, true])
  t.is((await storage.inner.get(id))!.data['a'], 3)
})
