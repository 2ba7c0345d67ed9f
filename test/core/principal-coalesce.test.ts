import test from 'ava'
import { generateId } from '../../src/ids.js'
import type { PrincipalChange } from '../../src/kit/index.js'
import type { StorageOperation } from '../../src/types.js'
import { WriteQueue } from '../../src/write-queue.js'
import { MemoryStorage } from '../../storages/memory.js'

// Writes made in one turn fold into one another before they are sent (coalescing): the principal
// the storage ends with is the one the newest write left, whichever entry it folded into.

const HOUR = 3_600_000

function update(id: string, key: string, value: number, principal?: PrincipalChange): StorageOperation {
  const expiresAt = Date.now() + HOUR
  return principal === undefined ? { type: 'update', id, key, value, expiresAt } : { type: 'update', id, key, value, expiresAt, principal }
}

function remove(id: string, key: string, principal?: PrincipalChange): StorageOperation {
  const expiresAt = Date.now() + HOUR
  return principal === undefined ? { type: 'remove', id, key, expiresAt } : { type: 'remove', id, key, expiresAt, principal }
}

async function principalOf(storage: MemoryStorage, id: string): Promise<string | undefined> {
  return (await storage.get(id))?.principal
}

for (const batching of [true, false]) {
  const mode = batching ? 'batched' : 'one call per write'
  const setup = async () => {
    const storage = new MemoryStorage()
    const queue = new WriteQueue(storage, { batching })
    const id = generateId()
    await queue.enqueue({ type: 'set', id, record: { data: { userId: 0 }, createdAt: Date.now(), expiresAt: Date.now() + HOUR, principal: '0' } })
    return { storage, queue, id }
  }

  test(`${mode}: key writes folded into a creating set leave the last principal on the record`, async (t) => {
    const storage = new MemoryStorage()
    const queue = new WriteQueue(storage, { batching })
    const id = generateId()
    const writes = [
      queue.enqueue({ type: 'set', id, record: { data: {}, createdAt: Date.now(), expiresAt: Date.now() + HOUR, principal: 'a' } }),
      queue.enqueue(update(id, 'userId', 1, 'b')),
      queue.enqueue(update(id, 'cart', 1)),
      queue.enqueue(remove(id, 'userId', null)),
      queue.enqueue(update(id, 'userId', 3, 'c')),
    ]
    await Promise.all(writes)
    t.is(await principalOf(storage, id), 'c')
    t.deepEqual(
      (await storage.findByPrincipal('c')).map((s) => s.id),
      [id],
    )
    t.deepEqual(await storage.findByPrincipal('a'), [])
  })

  test(`${mode}: the newest write of the principal key wins over an older one and over what later entries carried`, async (t) => {
    const { storage, queue, id } = await setup()
    // A function principal: a write of another key may change it too; the newest change wins.
    await Promise.all([queue.enqueue(update(id, 'userId', 1, '1')), queue.enqueue(update(id, 'team', 2, '2')), queue.enqueue(update(id, 'userId', 3, '3'))])
    t.is(await principalOf(storage, id), '3')
    t.true(queue.stats().coalesced > 0, 'the writes were folded')
    t.deepEqual(await storage.findByPrincipal('2'), [])
  })

  test(`${mode}: a remove folded over a write of the key clears the principal; a write of another key leaves it`, async (t) => {
    const { storage, queue, id } = await setup()
    await Promise.all([queue.enqueue(update(id, 'userId', 9, '9')), queue.enqueue(update(id, 'cart', 1)), queue.enqueue(remove(id, 'userId', null))])
    t.is(await principalOf(storage, id), undefined)
    await Promise.all([queue.enqueue(update(id, 'userId', 5, '5')), queue.enqueue(update(id, 'cart', 2)), queue.enqueue(update(id, 'userId', 5))])
    t.is(await principalOf(storage, id), '5', 'a later write of the key that does not change it keeps the change of the earlier one')
  })
}
