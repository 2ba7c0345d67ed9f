import test from 'ava'
import session from 'express-session'
import { isSessionError } from '../../src/errors.js'
import type { Batch, PrincipalSession } from '../../src/kit/index.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { StorageOperation } from '../../src/types.js'
import { ExpressStoreStorage } from '../../storages/express-store.js'
import { MemoryStorage } from '../../storages/memory.js'
import { startApp } from '../helpers/app-server.js'
import { testManager, visit } from '../helpers/manager.js'

// The principal options: what is refused at construction and in writes, what reaches the
// storage (nothing extra without the option), storage failures, and a revoked cookie over HTTP.

/** A MemoryStorage that keeps every operation it applies, single or batched (touches aside). */
class RecordingStorage extends MemoryStorage {
  readonly operations: StorageOperation[] = []
  protected override _apply(op: StorageOperation, now: number) {
    if (op.type !== 'touch') this.operations.push(op)
    return super._apply(op, now)
  }
  protected override _write(batch: Batch, now: number): void {
    this.operations.push(...batch.operations.filter((op) => op.type !== 'touch'))
    super._write(batch, now)
  }
}

/** A MemoryStorage whose index cannot be read. */
class UnsearchableStorage extends MemoryStorage {
  protected override _findByPrincipal(): PrincipalSession[] {
    throw new Error('index unreachable')
  }
}

const bad: Array<[string, Partial<SessionManagerOptions>, RegExp]> = [
  ['a number principal', { principal: 5 as unknown as string }, /"principal" must be the name of a data key or a function/],
  ['an empty principal', { principal: '' }, /"principal" must be the name of a data key/],
  ['maxSessionsPerPrincipal 0', { principal: 'userId', maxSessionsPerPrincipal: 0 }, /"maxSessionsPerPrincipal" must be an integer of at least 1/],
  ['maxSessionsPerPrincipal 1.5', { principal: 'userId', maxSessionsPerPrincipal: 1.5 }, /"maxSessionsPerPrincipal" must be an integer/],
  ['maxSessionsPerPrincipal as text', { principal: 'userId', maxSessionsPerPrincipal: '5' as unknown as number }, /"maxSessionsPerPrincipal"/],
  ['maxSessionsPerPrincipal alone', { maxSessionsPerPrincipal: 5 }, /"maxSessionsPerPrincipal" needs the "principal" option/],
]
for (const [title, options, message] of bad) {
  test(`refused at construction: ${title}`, (t) => {
    t.throws(() => new SessionManager({ storage: new MemoryStorage(), ...options }), { instanceOf: TypeError, message })
  })
}

test('a storage that does not index principals is refused with principal, naming it, at construction and in setPersistentStorage', (t) => {
  const express = () => new ExpressStoreStorage(new session.MemoryStore(), { storeExpires: false })
  const error = t.throws(() => new SessionManager({ storage: express(), principal: 'userId' }), { instanceOf: TypeError })
  t.regex(error.message, /the express-store storage does not/)
  t.regex(error.message, /an express-session store cannot be searched by principal/)
  t.notThrows(() => new SessionManager({ storage: express() }), 'fine without principal')
  const manager = new SessionManager({ storage: new MemoryStorage(), principal: 'userId' })
  t.throws(() => manager.setPersistentStorage(express()), { instanceOf: TypeError, message: /express-store storage does not/ })
  t.notThrows(() => manager.setPersistentStorage(new MemoryStorage()))
})

test('principal values that cannot be indexed are refused before anything changes', async (t) => {
  const storage = new MemoryStorage()
  const manager = testManager({ storage, principal: 'userId' })
  const { session } = await visit(manager)
  await session.set('userId', 1)
  for (const value of [{ id: 1 }, [1], true, 'x'.repeat(256), '', '\uD800']) {
    const error = await t.throwsAsync(session.set('userId', value))
    t.true(isSessionError(error, 'SESSION_INVALID_VALUE'), `${JSON.stringify(value)}: ${error?.message}`)
    t.is(session.get('userId'), 1, 'the cache is unchanged')
  }
  t.is((await storage.get(session.id))?.data['userId'], 1, 'the storage is unchanged')
  t.deepEqual(
    (await manager.sessionsOf(1)).map((s) => s.id),
    [session.id],
  )
  await session.set('userId', null) // null is no principal
  t.deepEqual(await manager.sessionsOf(1), [])
  // A new session whose first write is a bad principal is not created at all.
  const fresh = await visit(manager)
  await t.throwsAsync(fresh.session.set('userId', { id: 2 }), { message: /principal of the session: its value must be a string or a number/ })
  t.true(fresh.session.isNew)
  t.is(fresh.res.cookieHeader(), '', 'no cookie was issued')
  await manager.close()
})

test('a principal function returning another type throws a TypeError, nothing changed; its own error is thrown as is', async (t) => {
  const manager = testManager({
    storage: new MemoryStorage(),
    principal: (data) => {
      if (data['explode'] === true) throw new RangeError('boom')
      return data['user'] as string | undefined
    },
  })
  const { session } = await visit(manager)
  await session.set('user', 'ada')
  await t.throwsAsync(session.set('user', true), { instanceOf: TypeError, message: /"principal" must return a string, a number or undefined, got boolean/ })
  t.is(session.get('user'), 'ada')
  await t.throwsAsync(session.set('explode', true), { instanceOf: RangeError })
  t.is(session.get('explode'), undefined)
  await t.throwsAsync(session.set('user', 'x'.repeat(300)), { message: /what the principal function returned must be well-formed text/ })
  t.deepEqual((await manager.sessionsOf('ada')).length, 1)
  await manager.close()
})

test('without the principal option no write carries a principal; with a key principal only writes of that key do', async (t) => {
  const plain = new RecordingStorage()
  const manager = testManager({ storage: plain })
  const { session } = await visit(manager)
  await session.set('userId', 1)
  await session.set('cart', 'x')
  await session.remove('userId')
  t.true(plain.operations.length >= 3)
  t.true(plain.operations.every((op) => !('principal' in op) && (op.type !== 'set' || !('principal' in op.record))))
  await t.throwsAsync(manager.sessionsOf(1), { message: /only with the SessionManager option "principal"/ })
  await manager.close()

  const indexed = new RecordingStorage()
  const keyed = testManager({ storage: indexed, principal: 'userId' })
  const other = (await visit(keyed)).session
  await other.set('cart', 'x')
  await other.set('userId', 42)
  await other.set('cart', 'y')
  await other.set('userId', 42) // unchanged: carries nothing
  await other.remove('userId')
  const principals = indexed.operations.map((op) =>
    op.type === 'set' ? op.record.principal : op.type === 'update' || op.type === 'remove' ? op.principal : undefined,
  )
  t.deepEqual(principals, [undefined, '42', undefined, undefined, null])
  await keyed.close()
})

test('sessionsOf and revokeSessionsOf refuse a value that is not a string or a number, and a storage failure is never an empty list', async (t) => {
  const manager = testManager({ storage: new UnsearchableStorage(), principal: 'userId' })
  for (const value of [undefined, null, {}, [42], true]) {
    await t.throwsAsync(manager.sessionsOf(value as string), { instanceOf: TypeError, message: /takes the principal as a string or a number/ })
    await t.throwsAsync(manager.revokeSessionsOf(value as string), { instanceOf: TypeError })
  }
  await t.throwsAsync(manager.revokeSessionsOf(42, { except: 5 as unknown as string }), { instanceOf: TypeError, message: /except must be a session id/ })
  const listed = await t.throwsAsync(manager.sessionsOf(42))
  t.true(isSessionError(listed, 'SESSION_STORAGE_UNAVAILABLE'))
  t.regex(String(((listed?.cause as Error | undefined)?.cause as Error | undefined)?.message), /index unreachable/, "the storage's error is kept")
  t.true(isSessionError(await t.throwsAsync(manager.revokeSessionsOf(42)), 'SESSION_STORAGE_UNAVAILABLE'))
  t.true(isSessionError(await t.throwsAsync(manager.sessionsOf('')), 'SESSION_INVALID_VALUE'))
  await manager.close()
  t.true(isSessionError(await t.throwsAsync(manager.sessionsOf(42)), 'SESSION_CLOSED'))
})

test('maxSessionsPerPrincipal that cannot list the sessions reports it on error and keeps the write', async (t) => {
  const manager = testManager({ storage: new UnsearchableStorage(), principal: 'userId', maxSessionsPerPrincipal: 1 })
  const errors: Error[] = []
  manager.on('error', (error) => errors.push(error))
  const { session } = await visit(manager)
  await session.set('userId', 42)
  t.is(session.get('userId'), 42)
  t.is(errors.length, 1)
  t.true(isSessionError(errors[0], 'SESSION_STORAGE_UNAVAILABLE'))
  await manager.close()
})

test('over HTTP: logging out the other devices refuses their cookies on the next request', async (t) => {
  const manager = new SessionManager({ storage: new MemoryStorage(), principal: 'userId' })
  const app = await startApp(t, manager, {
    '/login': async (session, query) => {
      await session.set('userId', Number(query.get('user')))
      return { id: session.id }
    },
    '/me': (session) => ({ userId: session.get('userId') ?? null }),
    '/logout-others': async (session) => ({ ended: await manager.revokeSessionsOf(session.get('userId') as number, { except: session.id }) }),
  })
  const laptop = app.client()
  const phone = app.client()
  const tablet = app.client()
  for (const client of [laptop, phone, tablet]) await client.get('/login?user=42')
  t.deepEqual((await phone.get('/me')).body, { userId: 42 })
  t.deepEqual((await laptop.get('/logout-others')).body, { ended: 2 })
  t.deepEqual((await phone.get('/me')).body, { userId: null }, 'the phone is logged out')
  t.deepEqual((await tablet.get('/me')).body, { userId: null })
  t.deepEqual((await laptop.get('/me')).body, { userId: 42 }, 'the laptop stays logged in')
})

/** A MemoryStorage whose deletes fail while `failDeletes` is set. */
class StuckDeletes extends MemoryStorage {
  failDeletes = false
  protected override _apply(op: StorageOperation, now: number) {
    if (op.type === 'delete' && this.failDeletes) throw new Error('delete refused')
    return super._apply(op, now)
  }
  protected override _write(batch: Batch, now: number): void {
    if (this.failDeletes && batch.operations.some((op) => op.type === 'delete')) throw new Error('delete refused')
    super._write(batch, now)
  }
}

test('revokeSessionsOf rejects with a code when a delete fails for good; the session stays refused and its delete pending', async (t) => {
  const storage = new StuckDeletes()
  const manager = testManager({ storage, principal: 'userId', writeRetries: 0, retryDelay: 0 })
  const other = await visit(manager)
  await other.session.set('userId', 42)
  storage.failDeletes = true
  const error = await t.throwsAsync(manager.revokeSessionsOf(42))
  t.true(isSessionError(error, 'SESSION_STORAGE_FAILED'), error?.message)
  t.is(manager.stats().pendingDestroys, 1)
  t.true((await visit(manager, other.cookie)).session.isNew, 'refused here while its delete is pending')
  t.deepEqual(await manager.sessionsOf(42), [], 'not listed as live while revoked here')
  storage.failDeletes = false
  for (let waited = 0; manager.stats().pendingDestroys > 0 && waited < 5000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50))
  t.is(manager.stats().pendingDestroys, 0, 'deleted in the background once the storage takes it')
  t.is(await storage.get(other.session.id), undefined)
  await manager.close()
})

test('a write rebased on a record another process changed leaves the index as its data says', async (t) => {
  const storage = new MemoryStorage()
  const one = testManager({ storage, principal: 'userId' })
  const two = testManager({ storage, principal: 'userId' })
  const created = await visit(one)
  await created.session.set('userId', 42)
  const stale = await visit(two, created.cookie) // the second process caches it as user 42
  t.is(stale.session.get('userId'), 42)
  await (await visit(one, created.cookie)).session.set('userId', 7) // the first makes it user 7

  // The second writes 42 again: no change from what it cached, but the record moved on meanwhile.
  await stale.session.set('userId', 42)
  t.is((await storage.get(created.session.id))?.data['userId'], 42)
  t.deepEqual(
    (await one.sessionsOf(42)).map((s) => s.id),
    [created.session.id],
    'indexed under the value its data holds',
  )
  t.deepEqual(await one.sessionsOf(7), [])

  // An update function derives its value again on the fresh record: the index follows what it derived.
  await (await visit(one, created.cookie)).session.set('userId', 100)
  const derived = await stale.session.update('userId', (current) => (current as number) + 1)
  t.is(derived, 101)
  t.deepEqual(
    (await one.sessionsOf(101)).map((s) => s.id),
    [created.session.id],
  )
  t.deepEqual(await one.sessionsOf(100), [])
  t.deepEqual(await one.sessionsOf(43), [])
  await one.close()
})

/** A MemoryStorage whose index answers only when `answer()` is called. */
class SlowIndex extends MemoryStorage {
  readonly #waiting: Array<() => void> = []
  override findByPrincipal(): Promise<PrincipalSession[]> {
    return new Promise((resolve) => this.#waiting.push(() => resolve([])))
  }
  answer(): void {
    for (const resolve of this.#waiting.splice(0)) resolve()
  }
}

test('sessionsOf is bounded by storageTimeout', async (t) => {
  const storage = new SlowIndex()
  const manager = testManager({ storage, principal: 'userId', storageTimeout: 0.1 })
  const started = Date.now()
  const error = await t.throwsAsync(manager.sessionsOf(42))
  t.true(isSessionError(error, 'SESSION_STORAGE_UNAVAILABLE'), error?.message)
  t.regex(String((error?.cause as Error | undefined)?.message), /did not answer findByPrincipal within 100 ms/)
  t.true(Date.now() - started < 2000)
  storage.answer()
  await manager.close()
})
