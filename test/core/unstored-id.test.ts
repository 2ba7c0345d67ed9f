import test from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { Identity, SessionRecordInput, SessionRequest, SessionResponse, WriteConflict } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { outcome } from '../helpers/app-server.js'
import type { FakeResponse } from '../helpers/fake-http.js'
import { TEST_KEY, visit } from '../helpers/manager.js'
import { FaultStorage } from '../helpers/storage-double.js'

// The id of a session the storage never kept is taken back from the response (see
// test/middleware/unstored-id.test.ts for the same over HTTP): the edges of when it is, and
// when it is not.

function setup(options: SessionManagerOptions = {}): { manager: SessionManager; storage: FaultStorage<MemoryStorage> } {
  const storage = new FaultStorage(new MemoryStorage())
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ keys: [TEST_KEY] })], writeRetries: 0, retryDelay: 0, ...options })
  manager.on('error', () => undefined)
  return { manager, storage }
}

/** The names of the cookies `res` sets. */
function names(res: FakeResponse): string[] {
  return [...res.cookies().keys()].sort()
}

/** A cookie-less identity written against the contract alone, without the optional `withdraw`. */
class PlainIdentity implements Identity {
  readonly name = 'plain:x-plain'
  matches(): boolean {
    return true
  }
  get(req: SessionRequest): readonly string[] {
    const value = req.headers['x-plain']
    return typeof value === 'string' ? [value] : []
  }
  set(_req: SessionRequest, res: SessionResponse, id: string): void {
    res.setHeader('x-plain', id)
  }
  remove(_req: SessionRequest, res: SessionResponse): void {
    res.setHeader('x-plain', '')
  }
}

/**
 * A memory storage that, once `failing`, refuses a touch at once and a set only later: the order
 * in which a storage without batches answers a renew's two writes when it goes down.
 */
class TouchFailsFirst extends MemoryStorage {
  failing = false

  override set(id: string, record: SessionRecordInput): Promise<void>
  override set(id: string, record: SessionRecordInput, ifVersion?: number): Promise<void | WriteConflict>
  override async set(id: string, record: SessionRecordInput, ifVersion?: number): Promise<void | WriteConflict> {
    if (!this.failing) return super.set(id, record, ifVersion)
    await new Promise((resolve) => setTimeout(resolve, 20))
    throw new Error('set failed')
  }

  override async touch(id: string, expiresAt: number): Promise<boolean> {
    if (this.failing) throw new Error('touch failed')
    return super.touch(id, expiresAt)
  }
}

test('a renew takes the new cookie back before renew() rejects, even when the touch of the old id failed first', async (t) => {
  const storage = new TouchFailsFirst()
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ keys: [TEST_KEY] })], writeRetries: 0, retryDelay: 0, batching: false })
  manager.on('error', () => undefined)
  const created = await visit(manager)
  await created.session.set('user', 'ada')
  const again = await visit(manager, created.cookie)
  storage.failing = true
  let namesAtRejection: string[] | undefined
  const result = await outcome(
    again.session.renew().catch((err: unknown) => {
      namesAtRejection = names(again.res)
      throw err
    }),
  )
  t.is(result, 'SESSION_STORAGE_FAILED')
  t.deepEqual(namesAtRejection, [], 'no cookie left when the caller hears of the failure')
})

test('a renew whose new id was stored keeps its cookie, even when the touch of the old id failed', async (t) => {
  const { manager, storage } = setup()
  const created = await visit(manager)
  await created.session.set('user', 'ada')
  const again = await visit(manager, created.cookie)
  storage.failOperations((op) => op.type === 'touch')
  t.is(await outcome(again.session.renew()), 'SESSION_STORAGE_FAILED')
  t.deepEqual(names(again.res), ['sid', 'sid.sig'])
  storage.up()
  const next = await visit(manager, again.cookie)
  t.is(next.session.id, again.session.id, 'the cookie names the stored new id')
  t.is(next.session.get('user'), 'ada')
})

test('a renew of a session destroyed in storage meanwhile takes the new cookie back (its copy is deleted)', async (t) => {
  const { manager, storage } = setup()
  const created = await visit(manager)
  await created.session.set('user', 'ada')
  const again = await visit(manager, created.cookie)
  await storage.inner.delete(again.session.id) // another process destroyed it; this one still caches it
  t.is(await outcome(again.session.renew()), 'SESSION_DESTROYED')
  t.deepEqual(names(again.res), [])
})

test('an identity without withdraw keeps working: its header stays on a failed first write, and the write still rejects', async (t) => {
  const { manager, storage } = setup({ identities: [new PlainIdentity()] })
  const { session, res } = await visit(manager)
  storage.down()
  t.is(await outcome(session.set('views', 1)), 'SESSION_STORAGE_FAILED')
  t.is(res.getHeader('x-plain'), session.id)
})

test('a withdraw that throws is ignored: the caller gets the write error', async (t) => {
  const identity = Object.assign(new PlainIdentity(), {
    withdraw(): void {
      throw new Error('cannot withdraw')
    },
  })
  const { manager, storage } = setup({ identities: [identity] })
  const { session } = await visit(manager)
  storage.down()
  t.is(await outcome(session.set('views', 1)), 'SESSION_STORAGE_FAILED')
})

test('an identity whose withdraw is not a function is refused at construction', (t) => {
  const identity = Object.assign(new PlainIdentity(), { withdraw: 'yes' })
  t.throws(() => new SessionManager({ identities: [identity as unknown as Identity] }), {
    instanceOf: TypeError,
    message: /identities\[0\]" has a withdraw that is not a method/,
  })
})
