/**
 * cacheMaxBytes: the cache is bounded by the bytes of its sessions beside their count. Sessions
 * evicted for bytes are still in storage and load again with their data; a write keeps the
 * count up to date; the option is checked.
 */
import test from 'ava'
import { MemoryStorage } from '../../storages/memory.js'
import { testManager, visit } from '../helpers/manager.js'

const VALUE = 'x'.repeat(4000)

test('the cached sessions stay under cacheMaxBytes; an evicted one loads again from storage with its data', async (t) => {
  const storage = new MemoryStorage()
  const manager = testManager({ storage, maxSessionBytes: 10_000, cacheMaxBytes: 30_000 })
  const cookies: string[] = []
  for (let i = 0; i < 20; i++) {
    const visited = await visit(manager)
    await visited.session.set('blob', `${i}:${VALUE}`)
    cookies.push(visited.cookie)
    t.true(manager.stats().cachedBytes <= 30_000, `after ${i + 1} sessions: ${manager.stats().cachedBytes} bytes`)
  }
  const stats = manager.stats()
  t.true(stats.cachedBytes > 0)
  t.true(stats.cached < 20, `${stats.cached} sessions cached`)
  t.true(stats.evicted >= 20 - stats.cached)
  const missesBefore = stats.misses
  const first = await visit(manager, cookies[0])
  t.is(first.session.get('blob'), `0:${VALUE}`)
  t.true(manager.stats().misses > missesBefore, 'read from storage, not the cache')
  await manager.close()
})

test('a write keeps the byte count up to date', async (t) => {
  const manager = testManager({ storage: new MemoryStorage(), maxSessionBytes: 10_000, cacheMaxBytes: 1_000_000 })
  const { session } = await visit(manager)
  await session.set('small', 1)
  const small = manager.stats().cachedBytes
  await session.set('big', VALUE)
  const big = manager.stats().cachedBytes
  t.true(big >= small + VALUE.length, `${small} then ${big}`)
  await session.remove('big')
  t.true(manager.stats().cachedBytes < big)
  await manager.close()
})

test('without cacheMaxBytes nothing is counted; a bound below maxSessionBytes is a TypeError', async (t) => {
  const manager = testManager({ storage: new MemoryStorage() })
  const { session } = await visit(manager)
  await session.set('blob', VALUE)
  t.is(manager.stats().cachedBytes, 0)
  await manager.close()
  t.throws(() => testManager({ storage: new MemoryStorage(), maxSessionBytes: 10_000, cacheMaxBytes: 5_000 }), {
    instanceOf: TypeError,
    message: /cacheMaxBytes/,
  })
  t.throws(() => testManager({ storage: new MemoryStorage(), cacheMaxBytes: -1 }), { instanceOf: TypeError, message: /cacheMaxBytes/ })
})
