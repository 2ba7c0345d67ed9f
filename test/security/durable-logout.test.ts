import test, { type ExecutionContext } from 'ava'
import { setTimeout as sleep } from 'node:timers/promises'
import { CookieIdentity } from '../../identities/cookie.js'
import type { SessionError } from '../../src/errors.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import { MemoryStorage } from '../../storages/memory.js'
import { outcome, startApp } from '../helpers/app-server.js'
import { TEST_KEY } from '../helpers/manager.js'
import { StorageDouble } from '../helpers/storage-double.js'

// Durable logout. A destroy() the storage does not acknowledge (an outage longer than the write
// queue's retries, about 0.4 s with the defaults) used to be dropped: once the storage was back
// the record was still there, and another process, or this one after a restart, served the
// replayed cookie. In this process, 1,001 renews with cacheLimit 10 pushed the id out of the
// revoked-id memory, and the replayed cookie opened the session again.

async function app(t: ExecutionContext, options: SessionManagerOptions = {}) {
  const storage = new StorageDouble(new MemoryStorage())
  const identity = new CookieIdentity({ keys: [TEST_KEY] })
  const manager = new SessionManager({ storage, identities: [identity], ...options })
  const errors: SessionError[] = []
  manager.on('error', (err) => errors.push(err))
  const running = await startApp(t, manager, {
    '/login': async (session) => {
      await session.renew()
      await session.set('user', 'ada')
      return { id: session.id }
    },
    '/logout': async (session) => ({ outcome: await outcome(session.destroy()) }),
    '/renew': async (session) => ({ outcome: await outcome(session.renew()) }),
    '/whoami': (session) => ({ id: session.id, isNew: session.isNew, user: session.get('user') ?? null }),
  })
  return { storage, manager, identity, errors, running }
}

/** Wait, bounded, until `done()` holds; true if it did. */
async function eventually(done: () => boolean, withinMs = 30_000): Promise<boolean> {
  const until = Date.now() + withinMs
  while (!done()) {
    if (Date.now() > until) return false
    await sleep(50)
  }
  return true
}

test('a logout during a 2 s outage fails, is refused here meanwhile, and is deleted once the storage is back', async (t) => {
  const { storage, manager, identity, running } = await app(t)
  const user = running.client()
  const login = await user.get('/login')
  const id = login.body['id'] as string
  const stolen = user.jar.header() // what an attacker copied before the logout
  storage.down()
  const logout = await user.get('/logout')
  t.is(logout.body['outcome'], 'SESSION_STORAGE_FAILED', 'destroy() still tells the caller it failed')
  t.is(manager.stats().pendingDestroys, 1)
  const replay = await running.client().get('/whoami', stolen)
  t.true(replay.body['isNew'], 'refused in this process during the outage')
  t.is(replay.body['user'], null)
  await sleep(2000)
  t.truthy(await storage.inner.get(id), 'still stored while the storage is down')
  storage.up()
  t.true(await eventually(() => manager.stats().pendingDestroys === 0), 'the delete is retried until the storage acknowledges')
  t.is(await storage.inner.get(id), undefined, 'the record is gone')
  // Another process (or this one restarted) on the same storage: the stolen cookie opens nothing.
  const other = new SessionManager({ storage: storage.inner, identities: [identity] })
  const otherApp = await startApp(t, other, { '/whoami': (session) => ({ isNew: session.isNew, user: session.get('user') ?? null }) })
  const elsewhere = await otherApp.client().get('/whoami', stolen)
  t.true(elsewhere.body['isNew'])
  t.is(elsewhere.body['user'], null)
})

test('close() makes one last attempt at a logout the storage did not acknowledge', async (t) => {
  const { storage, manager, running } = await app(t)
  const user = running.client()
  const id = (await user.get('/login')).body['id'] as string
  storage.down()
  t.is((await user.get('/logout')).body['outcome'], 'SESSION_STORAGE_FAILED')
  storage.up()
  t.is(manager.stats().pendingDestroys, 1)
  await manager.close()
  t.deepEqual(
    storage.applied.filter((op) => op.id === id).map((op) => op.type),
    ['set', 'delete'],
    'the delete reached the storage before it closed',
  )
})

test('1,001 renews with cacheLimit 10 do not revive a logged-out id whose delete is not acknowledged', async (t) => {
  const { storage, manager, running } = await app(t, { cacheLimit: 10 })
  const victim = running.client()
  const id = (await victim.get('/login')).body['id'] as string
  const stolen = victim.jar.header()
  // Only this record's delete fails: the storage serves everything else.
  storage.failOperations((op) => op.type === 'delete' && op.id === id)
  t.is((await victim.get('/logout')).body['outcome'], 'SESSION_STORAGE_FAILED')
  const anonymous = running.client()
  await anonymous.get('/login')
  for (let i = 0; i < 1001; i++) t.is((await anonymous.get('/renew')).body['outcome'], 'ok')
  t.true(manager.stats().renewed >= 1001)
  t.truthy(await storage.inner.get(id), 'the storage still has the record')
  const replay = await running.client().get('/whoami', stolen)
  t.true(replay.body['isNew'], 'the replayed cookie is refused')
  t.is(replay.body['user'], null)
  t.is(manager.stats().pendingDestroys, 1)
})

test('a renew whose old id cannot be deleted keeps that id refused and deletes it once the storage is back', async (t) => {
  const { storage, manager, running } = await app(t, { cacheLimit: 10 })
  const user = running.client()
  const oldId = (await user.get('/login')).body['id'] as string
  const stolen = user.jar.header()
  storage.failOperations((op) => op.type === 'delete' && op.id === oldId)
  t.is((await user.get('/renew')).body['outcome'], 'SESSION_STORAGE_FAILED')
  t.is(manager.stats().pendingDestroys, 1)
  t.true((await running.client().get('/whoami', stolen)).body['isNew'])
  storage.up()
  t.true(await eventually(() => manager.stats().pendingDestroys === 0))
  t.is(await storage.inner.get(oldId), undefined)
})

test('maxPendingDestroys bounds the logouts kept for retry: the oldest is given up and reported', async (t) => {
  const { storage, manager, errors, running } = await app(t, { maxPendingDestroys: 2 })
  const users = [running.client(), running.client(), running.client()]
  for (const user of users) await user.get('/login')
  storage.down()
  for (const user of users) t.is((await user.get('/logout')).body['outcome'], 'SESSION_STORAGE_FAILED')
  t.is(manager.stats().pendingDestroys, 2)
  t.true(errors.some((err) => err.code === 'SESSION_STORAGE_FAILED' && err.message.includes('maxPendingDestroys')))
})

test('maxPendingDestroys must be a positive integer', (t) => {
  t.throws(() => new SessionManager({ maxPendingDestroys: 0 }), { instanceOf: TypeError, message: /maxPendingDestroys/ })
  t.throws(() => new SessionManager({ maxPendingDestroys: 1.5 }), { instanceOf: TypeError, message: /maxPendingDestroys/ })
})
