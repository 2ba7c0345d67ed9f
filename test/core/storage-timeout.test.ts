import test, { type ExecutionContext } from 'ava'
import { createServer } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import type { RequestWithSession } from '../../src/middleware/node.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { JsonValue, SessionRecord } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { seedSession } from '../helpers/fake-http.js'
import { CookieJar, listen, send } from '../helpers/http-client.js'
import { FaultStorage } from '../helpers/storage-double.js'

// A storage that stops answering: every call has a deadline (storageTimeout), a read that never
// answers is a 503 and is not shared by the session's later requests, a write that never answers
// is retried and then fails like any failed write.

/** Reads (and, when asked, updates) that never settle while `hanging` is set; the rest as the double does. */
class HangingStorage extends FaultStorage<MemoryStorage> {
  hangReads = false
  hangWrites = false
  /** Calls that were left hanging. */
  hung = 0

  constructor() {
    super(new MemoryStorage(), { batch: false })
  }

  override get(id: string): Promise<SessionRecord | undefined> {
    if (!this.hangReads) return super.get(id)
    this.hung++
    return new Promise(() => {})
  }

  override update(id: string, key: string, value: JsonValue, expiresAt: number, ifVersion?: number): Promise<boolean> {
    if (!this.hangWrites) return super.update(id, key, value, expiresAt, ifVersion) as Promise<boolean>
    this.hung++
    return new Promise(() => {})
  }
}

const NAME = 'sid'

async function start(t: ExecutionContext, options: SessionManagerOptions = {}): Promise<{ url: string; storage: HangingStorage; manager: SessionManager }> {
  const storage = new HangingStorage()
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ name: NAME, secure: false })], retryDelay: 1, ...options })
  const errors: string[] = []
  manager.on('error', (err) => errors.push(err.code))
  const sessions = manager.middleware()
  const server = createServer((req, res) =>
    sessions(req, res, (err?: unknown) => {
      if (err !== undefined) {
        res.statusCode = (err as { status?: number }).status ?? 500
        res.end(String((err as { code?: string }).code))
        return
      }
      const session = (req as RequestWithSession).session!
      const write = req.url === '/write' ? session.set('n', 1) : Promise.resolve()
      write.then(
        () => res.end(JSON.stringify({ isNew: session.isNew, user: session.get('user') ?? null })),
        (failed: { status?: number; code?: string }) => {
          res.statusCode = failed.status ?? 500
          res.end(String(failed.code))
        },
      )
    }),
  )
  const running = await listen(server)
  t.teardown(async () => {
    await running.close()
    storage.hangReads = false
    storage.hangWrites = false
    await manager.close()
  })
  return { url: running.url, storage, manager }
}

/** A request that gives up after 10 s: without a storage timeout, it would wait for ever. */
function get(url: string, jar: CookieJar): Promise<{ status: number; body: string }> {
  return Promise.race([send(url, { jar }), new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('no answer in 10 s')), 10_000).unref())])
}

test('a read that never answers is a 503, and once the storage answers again the same session is served', async (t) => {
  const { url, storage } = await start(t, { storageTimeout: 0.2 })
  const id = await seedSession(storage.inner, { user: 'ada' })
  const jar = new CookieJar()
  jar.store([`${NAME}=${id}`])
  storage.hangReads = true
  const [first, second] = await Promise.all([get(url, jar), get(url, jar)])
  t.is(first.status, 503)
  t.is(first.body, 'SESSION_STORAGE_UNAVAILABLE')
  t.is(second.status, 503)
  t.true(storage.hung >= 1)
  // The storage recovers; the read it never answered is still pending, and must not be shared.
  storage.hangReads = false
  const after = await get(url, jar)
  t.is(after.status, 200)
  t.deepEqual(JSON.parse(after.body), { isNew: false, user: 'ada' })
})

test('a write that never answers is retried, then fails with SESSION_STORAGE_FAILED, and later writes succeed', async (t) => {
  const { url, storage, manager } = await start(t, { storageTimeout: 0.1, writeRetries: 2 })
  const id = await seedSession(storage.inner, { user: 'ada' })
  const jar = new CookieJar()
  jar.store([`${NAME}=${id}`])
  t.is((await get(url, jar)).status, 200)
  storage.hangWrites = true
  const failed = await get(`${url}/write`, jar)
  t.is(failed.status, 503)
  t.is(failed.body, 'SESSION_STORAGE_FAILED')
  t.is(storage.hung, 3, 'one try and two retries, each given up at the timeout')
  t.is(manager.stats().pendingWrites, 0)
  storage.hangWrites = false
  t.is((await get(`${url}/write`, jar)).status, 200)
  t.is((await storage.inner.get(id))?.data['n'], 1)
})

test('storageTimeout is checked: a positive number of seconds or Infinity', (t) => {
  for (const bad of [0, -1, Number.NaN, '5', null]) {
    t.throws(() => new SessionManager({ storage: new MemoryStorage(), storageTimeout: bad as number }), { instanceOf: TypeError, message: /"storageTimeout"/ })
  }
  t.notThrows(() => new SessionManager({ storage: new MemoryStorage(), storageTimeout: Infinity }))
})

test('manager.storage is the storage given, not the bounded wrapper', (t) => {
  const storage = new MemoryStorage()
  t.is(new SessionManager({ storage }).storage, storage)
})
