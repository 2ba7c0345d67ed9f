import test from 'ava'
import session from 'express-session'
import { RedisStore } from 'connect-redis'
import { createClient } from 'redis'
import { randomBytes } from 'node:crypto'
import { isSessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import type { SessionRecordInput } from '../../src/types.js'
import { ExpressStoreStorage, RECORD_FIELD, type ExpressSessionStore } from '../../storages/express-store.js'
import { limitsContract } from '../helpers/limits-contract.js'
import { storageContract } from '../helpers/storage-contract.js'
import { probeTcp, REDIS_URL, serviceTest } from '../helpers/services.js'

// Awaited before any test is declared: ava wants all declarations in one synchronous run.
const redisTest = await serviceTest('Redis', () => probeTcp(REDIS_URL, 6379))

const HOUR = 3_600_000

function record(data: SessionRecordInput['data'], overrides: Partial<SessionRecordInput> = {}): SessionRecordInput {
  const now = Date.now()
  return { data, createdAt: now, expiresAt: now + HOUR, ...overrides }
}

/** A session object as a store holds it. */
interface RawSession {
  cookie: { originalMaxAge: number | null; expires?: string | Date | null; [key: string]: unknown }
  [key: string]: unknown
}

/** The raw session object a store holds under `sid`. */
function rawGet(store: ExpressSessionStore, sid: string): Promise<RawSession | null | undefined> {
  return new Promise((resolve, reject) => {
    store.get(sid, (err, value) => (err ? reject(err) : resolve(value as RawSession | null | undefined)))
  })
}

function rawSet(store: ExpressSessionStore, sid: string, value: RawSession): Promise<void> {
  return new Promise((resolve, reject) => {
    store.set(sid, value, (err) => (err ? reject(err) : resolve()))
  })
}

/** A session exactly as express-session itself would store it: data at top level, no record of ours. */
function expressSessionShape(views: number): RawSession {
  return { cookie: { originalMaxAge: HOUR, expires: new Date(Date.now() + HOUR).toISOString(), httpOnly: true, path: '/' }, views }
}

// With `storeExpires` (the default) the store expires sessions itself: MemoryStore drops one
// when it is read after its cookie.expires, connect-redis never writes one already expired. So
// the contract's "cleanup reports how many it deleted" cannot hold there: when cleanup lists the
// store, the expired ones are already gone (cleanup finds 0; everything else holds, see the
// tests below). The whole contract runs on `storeExpires: false`, where this library alone
// expires sessions and cleanup deletes them.
storageContract('express-store (express-session MemoryStore)', {
  open: async () => new ExpressStoreStorage(new session.MemoryStore(), { storeExpires: false }),
  openWithClock: async (now) => new ExpressStoreStorage(new session.MemoryStore(), { storeExpires: false, now }),
})

storageContract('express-store (a store without all, length or clear)', {
  open: async () => {
    const base = new session.MemoryStore()
    return new ExpressStoreStorage({ get: base.get.bind(base), set: base.set.bind(base), destroy: base.destroy.bind(base) })
  },
})

test('express-store: a session is stored as a valid express-session session object', async (t) => {
  const store = new session.MemoryStore()
  const storage = new ExpressStoreStorage(store)
  const id = generateId()
  const input = record({ user: { name: 'ada' }, views: 2 })
  await storage.set(id, input)
  const raw = await rawGet(store, id)
  t.truthy(raw)
  t.is(new Date(raw!.cookie.expires as string).getTime(), input.expiresAt)
  t.true(typeof raw!.cookie.originalMaxAge === 'number' && raw!.cookie.originalMaxAge > 0)
  t.deepEqual((raw![RECORD_FIELD] as { data: unknown }).data, input.data)
  // express-session's own loader accepts it and sees the same deadline.
  const loaded = await new Promise<session.SessionData | undefined>((resolve, reject) => {
    store.load(id, (err, sess) => (err ? reject(err as Error) : resolve(sess)))
  })
  t.is(loaded!.cookie.expires!.getTime(), input.expiresAt)
})

test('express-store: the absolute deadline caps cookie.expires, so the store drops the session on time', async (t) => {
  const store = new session.MemoryStore()
  const storage = new ExpressStoreStorage(store)
  const id = generateId()
  const absoluteExpiresAt = Date.now() + 60_000
  await storage.set(id, record({ a: 1 }, { absoluteExpiresAt }))
  const raw = await rawGet(store, id)
  t.is(new Date(raw!.cookie.expires as string).getTime(), absoluteExpiresAt)
})

test('express-store: update, remove and touch keep what express-session sees in step', async (t) => {
  const store = new session.MemoryStore()
  const storage = new ExpressStoreStorage(store)
  const id = generateId()
  await storage.set(id, record({ a: 1 }))
  const later = Date.now() + 3 * HOUR
  t.true(await storage.touch(id, later))
  t.true(await storage.update(id, 'b', [1, 2], later))
  const raw = await rawGet(store, id)
  t.is(new Date(raw!.cookie.expires as string).getTime(), later)
  t.deepEqual((await storage.get(id))!.data, { a: 1, b: [1, 2] })
})

test('express-store: a session that express-session wrote is refused as unusable, never overwritten by an update, and not listed', async (t) => {
  const store = new session.MemoryStore()
  const storage = new ExpressStoreStorage(store)
  const foreign = 'express-session-id-1'
  await rawSet(store, foreign, expressSessionShape(3))
  const mine = generateId()
  await storage.set(mine, record({ mine: true }))
  const error = await t.throwsAsync(storage.get(foreign))
  t.true(isSessionError(error, 'SESSION_INVALID_RECORD'))
  await t.throwsAsync(storage.update(foreign, 'x', 1, Date.now() + HOUR), { message: /not written by caching-session-manager/ })
  t.is((await rawGet(store, foreign))!['views'], 3)
  const listed = []
  for await (const [id] of storage.all()) listed.push(id)
  t.deepEqual(listed, [mine])
  t.is(await storage.length(), 1)
  t.is(await storage.cleanup(Date.now() + 10 * HOUR), 1)
  t.truthy(await rawGet(store, foreign))
})

test('express-store: ids express-session makes (not our format) work', async (t) => {
  const storage = new ExpressStoreStorage(new session.MemoryStore())
  const id = 'r3ZCuM8iSHGbYV1uqJ1dFqQZp6yuzhn8'
  await storage.set(id, record({ a: 1 }))
  t.deepEqual((await storage.get(id))!.data, { a: 1 })
})

test('express-store on MemoryStore: expired sessions are dropped by the store itself, so cleanup finds none', async (t) => {
  const storage = new ExpressStoreStorage(new session.MemoryStore())
  const now = Date.now()
  const live = generateId()
  await storage.set(live, record({ live: true }))
  await storage.set(generateId(), record({ dead: true }, { expiresAt: now - 1000 }))
  await storage.set(generateId(), record({ dead: true }, { absoluteExpiresAt: now - 1000 }))
  t.is(await storage.cleanup(now), 0)
  t.is(await storage.length(), 1)
  t.truthy(await storage.get(live))
})

test('express-store on MemoryStore: cleanup deletes what is expired at the given time and re-checks each one first', async (t) => {
  const store = new session.MemoryStore()
  const storage = new ExpressStoreStorage(store)
  const now = Date.now()
  const soon = generateId()
  const late = generateId()
  await storage.set(soon, record({ a: 1 }, { expiresAt: now + HOUR }))
  await storage.set(late, record({ b: 2 }, { expiresAt: now + 5 * HOUR }))
  t.is(await storage.cleanup(now + 2 * HOUR), 1)
  t.is(await rawGet(store, soon), undefined)
  t.truthy(await rawGet(store, late))
})

test('express-store: concurrent writes of one id in one process are applied in order', async (t) => {
  const storage = new ExpressStoreStorage(new session.MemoryStore())
  const id = generateId()
  await storage.set(id, record({}))
  const expiresAt = Date.now() + HOUR
  const writes = []
  for (let i = 0; i < 10; i++) {
    writes.push(storage.update(id, 'last', i, expiresAt))
    writes.push(storage.update(id, `k${i}`, i, expiresAt))
  }
  writes.push(storage.remove(id, 'k3', expiresAt))
  await Promise.all(writes)
  const got = await storage.get(id)
  t.is(got!.data['last'], 9)
  t.false(Object.hasOwn(got!.data, 'k3'))
  t.is(Object.keys(got!.data).length, 10)
  t.is(got!.version, 22)
})

test('express-store: conditional writes of one process are checked and written under its lock: of two against one version, one applies', async (t) => {
  const storage = new ExpressStoreStorage(new session.MemoryStore())
  const id = generateId()
  const expiresAt = Date.now() + HOUR
  t.deepEqual(await Promise.all([storage.set(id, record({ by: 'a' }), 0), storage.set(id, record({ by: 'b' }), 0)]), [undefined, 'conflict'])
  for (let version = 1; version <= 5; version++) {
    const outcomes = await Promise.all([storage.update(id, 'n', `a${version}`, expiresAt, version), storage.update(id, 'n', `b${version}`, expiresAt, version)])
    t.deepEqual(outcomes, [true, 'conflict'], 'in arrival order: the first applies, the second finds the next version')
  }
  t.like(await storage.get(id), { data: { by: 'a', n: 'a5' }, version: 6 })
  t.deepEqual(await Promise.all([storage.delete(id, 6), storage.update(id, 'n', 'late', expiresAt, 6)]), [undefined, false])
})

test('express-store: versions() reads each session with the store get', async (t) => {
  const store = new session.MemoryStore()
  let gets = 0
  const get = store.get.bind(store)
  store.get = (sid, callback) => {
    gets++
    get(sid, callback)
  }
  const storage = new ExpressStoreStorage(store)
  const ids = [generateId(), generateId(), generateId()]
  await storage.set(ids[0]!, record({}))
  await storage.set(ids[1]!, record({}))
  t.true(await storage.update(ids[1]!, 'a', 1, Date.now() + HOUR))
  gets = 0
  t.deepEqual(Object.fromEntries(await storage.versions(ids)), { [ids[0]!]: 1, [ids[1]!]: 2 })
  t.is(gets, 3, 'one get per id')
})

test('express-store: a store without all, length or clear says which method is missing', async (t) => {
  const base = new session.MemoryStore()
  const minimal: ExpressSessionStore = { get: base.get.bind(base), set: base.set.bind(base), destroy: base.destroy.bind(base) }
  const storage = new ExpressStoreStorage(minimal)
  const id = generateId()
  await storage.set(id, record({ a: 1 }))
  t.truthy(await storage.get(id))
  for (const [call, method] of [
    [() => storage.length(), /no all\(\) or length\(\) method, which ExpressStoreStorage\.length\(\) needs/],
    [() => storage.clear(), /no clear\(\) method, which ExpressStoreStorage\.clear\(\) needs/],
    [() => storage.cleanup(), /no all\(\) method, which ExpressStoreStorage\.cleanup\(\) needs/],
    [
      async () => {
        for await (const _entry of storage.all()) t.fail()
      },
      /no all\(\) method, which ExpressStoreStorage\.all\(\) needs/,
    ],
  ] as const) {
    const error = await t.throwsAsync(call(), { message: method })
    t.true(isSessionError(error, 'SESSION_INVALID_STATE'))
  }
})

test('express-store: a store that fails, throws, rejects or never calls back makes the call reject, never look missing', async (t) => {
  const base = new session.MemoryStore()
  const failing = (mode: 'callback' | 'throw' | 'reject' | 'silent'): ExpressSessionStore => ({
    get: (sid, callback) => {
      if (mode === 'callback') return callback(new Error('store down'))
      if (mode === 'throw') throw new Error('store threw')
      if (mode === 'reject') return Promise.reject(new Error('store rejected'))
      return undefined
    },
    set: base.set.bind(base),
    destroy: base.destroy.bind(base),
  })
  // A SESSION_STORAGE_ERROR that names the storage and carries the store's own error as its cause.
  const failed = async (call: Promise<unknown>, cause: string | RegExp): Promise<void> => {
    const error = await t.throwsAsync(call, { message: /^the express-store storage could not (read|write) a session$/ })
    t.true(isSessionError(error, 'SESSION_STORAGE_ERROR'))
    const message = (error?.cause as Error).message
    if (typeof cause === 'string') t.is(message, cause)
    else t.regex(message, cause)
  }
  await failed(new ExpressStoreStorage(failing('callback')).get(generateId()), 'store down')
  await failed(new ExpressStoreStorage(failing('throw')).get(generateId()), 'store threw')
  await failed(new ExpressStoreStorage(failing('reject')).get(generateId()), 'store rejected')
  await failed(new ExpressStoreStorage(failing('silent'), { timeout: 50 }).get(generateId()), /did not call back from get\(\) within 50 ms/)
  await failed(new ExpressStoreStorage(failing('callback')).update(generateId(), 'a', 1, Date.now() + HOUR), 'store down')
})

test('express-store: a closed storage refuses calls; close waits for writes in flight', async (t) => {
  const store = new session.MemoryStore()
  const storage = new ExpressStoreStorage(store)
  const id = generateId()
  const writing = storage.set(id, record({ a: 1 }))
  await storage.close()
  await writing
  t.truthy(await rawGet(store, id))
  const error = await t.throwsAsync(storage.get(id))
  t.true(isSessionError(error, 'SESSION_CLOSED'))
  await t.throwsAsync(storage.set(id, record({})), { message: /closed/ })
})

test('express-store: options are checked', (t) => {
  t.throws(() => new ExpressStoreStorage({} as ExpressSessionStore), { instanceOf: TypeError, message: /express-session store/ })
  t.throws(() => new ExpressStoreStorage(new session.MemoryStore(), { timeout: -1 }), { instanceOf: TypeError, message: /"timeout"/ })
  t.throws(() => new ExpressStoreStorage(new session.MemoryStore(), { name: '' }), { instanceOf: TypeError, message: /"name"/ })
})

if (redisTest === test) {
  const client = createClient({ url: REDIS_URL })
  const connected = client.connect()
  const runPrefix = `csm-test:${randomBytes(6).toString('hex')}:`
  let opened = 0
  const redisStore = async (options: { disableTTL?: boolean } = {}): Promise<RedisStore> => {
    await connected
    return new RedisStore({ client, prefix: `${runPrefix}${opened++}:`, ...options })
  }

  test.after.always(async () => {
    await connected
    const keys = await client.keys(`${runPrefix}*`)
    if (keys.length > 0) await client.del(keys)
    client.destroy()
  })

  const stores = new Map<ExpressStoreStorage, RedisStore>()
  storageContract('express-store (connect-redis)', {
    open: async () => {
      const store = await redisStore({ disableTTL: true })
      const storage = new ExpressStoreStorage(store, { storeExpires: false })
      stores.set(storage, store)
      return storage
    },
    dispose: async (storage) => {
      await stores.get(storage as ExpressStoreStorage)!.clear()
    },
  })

  test("express-store (connect-redis): the key lives as long as the session, by the store's own TTL", async (t) => {
    const store = await redisStore()
    const storage = new ExpressStoreStorage(store)
    const id = generateId()
    await storage.set(id, record({ a: 1 }, { expiresAt: Date.now() + 600_000 }))
    const ttl = await client.ttl(`${store.prefix}${id}`)
    t.true(ttl > 590 && ttl <= 600, `ttl ${ttl}`)
    t.true(await storage.touch(id, Date.now() + 1_200_000))
    t.true((await client.ttl(`${store.prefix}${id}`)) > 1190)
    await storage.set(generateId(), record({ dead: true }, { expiresAt: Date.now() - 1 }))
    t.is(await storage.cleanup(), 0, 'connect-redis never kept the expired one')
    t.is(await storage.length(), 1)
    await store.clear()
  })

  test('express-store (connect-redis): a lost connection makes reads and writes reject, never look missing', async (t) => {
    const lost = createClient({ url: REDIS_URL })
    await lost.connect()
    const storage = new ExpressStoreStorage(new RedisStore({ client: lost, prefix: `${runPrefix}lost:` }))
    lost.destroy()
    await t.throwsAsync(storage.get(generateId()))
    await t.throwsAsync(storage.set(generateId(), record({ a: 1 })))
  })
} else {
  redisTest('express-store (connect-redis): storage contract', (t) => t.pass())
}

// The limits part of the contract with limits declared through the option, as a user of a store
// with known limits would: held up to them, refused beyond them by the manager.
limitsContract('express-store (limits declared by the option)', {
  open: async () =>
    new ExpressStoreStorage(new session.MemoryStore(), {
      storeExpires: false,
      limits: { maxDepth: 12, maxDataBytes: 70_000, wellFormedKeys: true, wellFormedValues: true },
    }),
})

test('ExpressStoreStorage: the limits option is declared in its capabilities, and checked', (t) => {
  const store = new session.MemoryStore()
  t.deepEqual(new ExpressStoreStorage(store, { limits: { maxDataBytes: 16_000_000 } }).capabilities.limits, { maxDataBytes: 16_000_000 })
  t.is(new ExpressStoreStorage(store).capabilities.limits, undefined)
  const bad: Array<[unknown, RegExp]> = [
    [5, /"limits" must be an object/],
    [{ maxDepth: 0 }, /maxDepth must be an integer of 1 to 100/],
    [{ maxDepth: 101 }, /maxDepth/],
    [{ maxDataBytes: -1 }, /maxDataBytes must be a positive integer/],
    [{ wellFormedKeys: 'yes' }, /wellFormedKeys must be a boolean/],
    [{ maxDepht: 3 }, /did you mean "maxDepth"\?/],
  ]
  for (const [limits, message] of bad) {
    t.throws(() => new ExpressStoreStorage(store, { limits: limits as never }), { instanceOf: TypeError, message }, JSON.stringify(limits))
  }
})
