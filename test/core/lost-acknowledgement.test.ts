import test from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionManager } from '../../src/session-manager.js'
import type { BatchOutcome, StorageOperation } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { fakeRequest, FakeResponse } from '../helpers/fake-http.js'

// A write the storage applied but whose acknowledgement was lost (a timeout that fired just
// before the reply, a connection reset after the commit) is retried. The retry of a new
// session's first write then finds the record it stored itself: that is the write landing,
// not another session holding the id.

/** MemoryStorage whose next `lose` writes (a batch counts once) are applied and then reported failed. */
function losingStorage(batch: boolean): { storage: MemoryStorage; lose: (count: number) => void } {
  const storage = new MemoryStorage()
  let losing = 0
  const after = async <T>(write: Promise<T>): Promise<T> => {
    const outcome = await write
    if (losing > 0) {
      losing--
      throw new Error('connection lost after the write was applied')
    }
    return outcome
  }
  const set = storage.set.bind(storage)
  storage.set = ((...args: Parameters<MemoryStorage['set']>) => after(set(...args))) as MemoryStorage['set']
  const batchOf = storage.batch.bind(storage)
  if (batch) storage.batch = (ops: readonly StorageOperation[]): Promise<BatchOutcome[]> => after(batchOf(ops))
  else (storage as { batch?: unknown }).batch = undefined
  return { storage, lose: (count) => (losing = count) }
}

for (const batch of [false, true]) {
  const mode = batch ? 'batched' : 'one by one'
  test(`${mode}: a new session whose first write was applied but not acknowledged is stored once, and its next writes land`, async (t) => {
    const { storage, lose } = losingStorage(batch)
    const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })], retryDelay: 1 })
    const errors: Error[] = []
    manager.on('error', (error) => errors.push(error))
    try {
      const res = new FakeResponse()
      const session = await manager.load(fakeRequest(), res)
      lose(1)
      await session.set('user', 'ada')
      t.deepEqual((await storage.get(session.id))?.data, { user: 'ada' })
      t.truthy(res.cookies().get('sid'), 'the cookie of the stored session is sent')
      await session.set('n', 1)
      t.deepEqual((await storage.get(session.id))?.data, { user: 'ada', n: 1 })
      t.deepEqual(errors, [])
    } finally {
      await manager.close()
    }
  })

  test(`${mode}: a new session whose id another record holds is still refused with SESSION_CONFLICT`, async (t) => {
    const { storage } = losingStorage(batch)
    const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })], retryDelay: 1 })
    manager.on('error', () => {})
    try {
      const session = await manager.load(fakeRequest(), new FakeResponse())
      // Another record under the same id, stored while the first attempt's acknowledgement was lost.
      const set = storage.set.bind(storage)
      let once = true
      storage.set = (async (...args: Parameters<MemoryStorage['set']>) => {
        if (once) {
          once = false
          await set(session.id, { data: { someone: 'else' }, createdAt: 1, expiresAt: Date.now() + 60_000 })
          throw new Error('connection lost')
        }
        return set(...args)
      }) as MemoryStorage['set']
      if (batch) {
        const batchOf = storage.batch.bind(storage)
        let first = true
        storage.batch = async (ops) => {
          if (first) {
            first = false
            await set(session.id, { data: { someone: 'else' }, createdAt: 1, expiresAt: Date.now() + 60_000 })
            throw new Error('connection lost')
          }
          return batchOf(ops)
        }
      }
      await t.throwsAsync(session.set('user', 'ada'), { code: 'SESSION_CONFLICT' } as never)
      t.deepEqual((await storage.get(session.id))?.data, { someone: 'else' }, 'the other record is left as it was')
    } finally {
      await manager.close()
    }
  })
}
