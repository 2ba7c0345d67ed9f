import test from 'ava'
import { MemoryStorage } from '../../storages/memory.js'
import { generateId } from '../../src/ids.js'
import { storageContract } from '../helpers/storage-contract.js'

storageContract('memory', { open: async () => new MemoryStorage(), openWithClock: async (now) => new MemoryStorage({ now }) })

test('memory: bounded to max sessions, least recently used first', async (t) => {
  const storage = new MemoryStorage({ max: 2 })
  const [a, b, c] = [generateId(), generateId(), generateId()]
  const record = { data: {}, createdAt: Date.now(), expiresAt: Date.now() + 60_000 }
  await storage.set(a, record)
  await storage.set(b, record)
  await storage.get(a)
  await storage.set(c, record)
  t.truthy(await storage.get(a))
  t.is(await storage.get(b), undefined)
  t.truthy(await storage.get(c))
})

test('memory: what a caller holds cannot change what is stored', async (t) => {
  const storage = new MemoryStorage()
  const id = generateId()
  const data = { list: [1, 2] }
  await storage.set(id, { data, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
  data.list.push(3)
  const got = await storage.get(id)
  ;(got!.data['list'] as number[]).push(4)
  t.deepEqual((await storage.get(id))!.data, { list: [1, 2] })
})

test('memory: options are checked', (t) => {
  t.throws(() => new MemoryStorage({ max: 0 }), { instanceOf: TypeError, message: /"max"/ })
})

test('memory: a closed storage rejects', async (t) => {
  const storage = new MemoryStorage()
  await storage.close()
  await t.throwsAsync(storage.get(generateId()), { message: /closed/ })
})
