import test from 'ava'
import { isSessionError } from '../../src/errors.js'
import { GatedStorage } from '../helpers/storage-double.js'
import { testManager, visit } from '../helpers/manager.js'

// A write through a session the cache let go of puts that session back in the cache, so a racing
// load cannot cache an older copy. The cache also lets a session go on purpose: after a write
// failed for good, so that no request sees data the storage does not hold. A later write through
// the same request's session object does not bring that copy, with the failed value, back into
// the cache.

test('after a write failed for good, a later write of the same request does not re-cache the value that was never stored', async (t) => {
  const storage = new GatedStorage()
  const manager = testManager({ storage, writeRetries: 0 })
  const created = await visit(manager)
  await created.session.set('n', 0)
  const { session } = await visit(manager, created.cookie)

  storage.failWrites = 1
  const failed = await session.set('a', 1).then(
    () => 'ok',
    (error: unknown) => (isSessionError(error) ? error.code : String(error)),
  )
  t.is(failed, 'SESSION_STORAGE_FAILED')
  t.false(Object.hasOwn((await storage.inner.get(session.id))!.data, 'a'), '"a" was never stored')

  // The handler goes on (it logged the failure, say) and writes another key: the storage is back.
  await session.set('b', 2)
  const next = await visit(manager, created.cookie)
  t.is(next.session.get('b'), 2)
  t.is(next.session.get('a'), undefined, 'the next request must not see a value the storage does not hold')
})
