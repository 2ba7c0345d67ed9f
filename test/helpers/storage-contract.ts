import test, { type ExecutionContext } from 'ava'
import { isSessionError, type SessionErrorCode } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { AbstractStorage, capabilitiesOf, type Storage, type StorageAdmin, type StorageOperation } from '../../src/kit/index.js'
import type { SessionRecordInput } from '../../src/types.js'

/** How a storage's test file hands fresh storages to the contract suite. */
export interface ContractOptions {
  /** A new, empty storage (its own table, location or prefix). */
  open(): Promise<Storage>
  /**
   * Optional: a new, empty storage whose clock is `now` (its `now` option). The suite then
   * checks that liveness and cleanup follow the storage's clock, not the machine's.
   */
  openWithClock?(now: () => number): Promise<Storage>
  /** Optional extra teardown after the storage was closed (drop the table, remove the folder). */
  dispose?(storage: Storage): Promise<void>
}

type Admin = Storage & StorageAdmin

const ADMIN_METHODS = ['length', 'all', 'clear', 'cleanup'] as const

const HOUR = 3_600_000

function record(data: SessionRecordInput['data'], overrides: Partial<SessionRecordInput> = {}): SessionRecordInput {
  const now = Date.now()
  return { data, createdAt: now, expiresAt: now + HOUR, ...overrides }
}

/**
 * The storage contract: every storage runs these same tests against its real backend.
 * A new storage is one file plus one call of this function in its test file.
 */
export function storageContract(name: string, options: ContractOptions): void {
  const run = async (t: ExecutionContext, storage: Storage, body: (t: ExecutionContext, storage: Storage) => Promise<void>): Promise<void> => {
    try {
      await body(t, storage)
    } finally {
      await storage.close()
      await options.dispose?.(storage)
    }
  }
  const withStorage = (title: string, body: (t: ExecutionContext, storage: Storage) => Promise<void>): void => {
    test(`${name}: ${title}`, async (t) => run(t, await options.open(), body))
  }
  /** A test of the operators' side: run where the storage declares it. */
  const withAdmin = (title: string, body: (t: ExecutionContext, storage: Admin) => Promise<void>): void => {
    withStorage(title, async (t, storage) => {
      if (!capabilitiesOf(storage).admin) {
        t.pass("this storage does not declare the operators' side")
        return
      }
      await body(t, storage as Admin)
    })
  }
  /** A test of the batch entry point: run where the storage declares it. */
  const withBatch = (title: string, body: (t: ExecutionContext, storage: Storage, batch: NonNullable<Storage['batch']>) => Promise<void>): void => {
    withStorage(title, async (t, storage) => {
      if (!capabilitiesOf(storage).batch || storage.batch === undefined) {
        t.pass('this storage does not declare batch')
        return
      }
      await body(t, storage, storage.batch.bind(storage))
    })
  }
  /** A test of what storages built on the kit share (coded errors, validation, failure propagation). */
  const withKitStorage = (title: string, body: (t: ExecutionContext, storage: Storage) => Promise<void>): void => {
    withStorage(title, async (t, storage) => {
      if (!(storage instanceof AbstractStorage)) {
        t.pass('this storage is not built on the storage kit')
        return
      }
      await body(t, storage)
    })
  }

  withStorage('declares its capabilities, and the methods match them', async (t, storage) => {
    const declared = capabilitiesOf(storage)
    t.is(typeof declared.batch, 'boolean')
    t.is(typeof declared.admin, 'boolean')
    t.is(typeof declared.shared, 'boolean')
    t.is(typeof storage.batch === 'function', declared.batch, 'batch() is there exactly when declared')
    const admin = storage as Storage & Partial<Record<(typeof ADMIN_METHODS)[number], unknown>>
    for (const method of ADMIN_METHODS) {
      if (declared.admin) t.is(typeof admin[method], 'function', `${method}() is there`)
    }
    if (!declared.admin) {
      // Not declared: absent, or there but refusing with a code.
      for (const method of ['length', 'clear', 'cleanup'] as const) {
        const call = admin[method]
        if (typeof call !== 'function') continue
        await rejectsWith(t, (call as () => Promise<unknown>).call(storage), 'SESSION_INVALID_STATE')
      }
    }
  })

  withStorage('get of an unknown id is undefined, not an error', async (t, storage) => {
    t.is(await storage.get(generateId()), undefined)
  })

  withStorage('set then get returns the data, timestamps and a version', async (t, storage) => {
    const id = generateId()
    const input = record(
      { user: { name: 'ada', roles: ['admin'] }, views: 3, ok: true, nothing: null, text: 'héllo ☃ 🍪' },
      { absoluteExpiresAt: Date.now() + 2 * HOUR },
    )
    await storage.set(id, input)
    const got = await storage.get(id)
    t.truthy(got)
    t.deepEqual(got!.data, input.data)
    t.is(got!.createdAt, input.createdAt)
    t.is(got!.expiresAt, input.expiresAt)
    t.is(got!.absoluteExpiresAt, input.absoluteExpiresAt)
    t.true(Number.isInteger(got!.version) && got!.version >= 1)
  })

  withStorage('a record without absolute expiry has none', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({ a: 1 }))
    const got = await storage.get(id)
    t.true(got!.absoluteExpiresAt === undefined || got!.absoluteExpiresAt === null)
  })

  withStorage('set replaces the whole record and increments the version', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({ a: 1, b: 2 }))
    const first = await storage.get(id)
    await storage.set(id, record({ c: 3 }))
    const second = await storage.get(id)
    t.deepEqual(second!.data, { c: 3 })
    t.true(second!.version > first!.version)
  })

  withStorage('update changes one key, keeps the others, moves expiry and bumps the version', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({ a: 1, b: 'two' }))
    const before = await storage.get(id)
    const expiresAt = Date.now() + 2 * HOUR
    t.true(await storage.update(id, 'a', { nested: [1, 2, 3] }, expiresAt))
    t.true(await storage.update(id, 'c', 'new', expiresAt))
    const after = await storage.get(id)
    t.deepEqual(after!.data, { a: { nested: [1, 2, 3] }, b: 'two', c: 'new' })
    t.is(after!.expiresAt, expiresAt)
    t.true(after!.version > before!.version)
  })

  withStorage('remove deletes one key and keeps the others', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({ a: 1, b: 2 }))
    t.true(await storage.remove(id, 'a', Date.now() + HOUR))
    t.true(await storage.remove(id, 'not-there', Date.now() + HOUR))
    t.deepEqual((await storage.get(id))!.data, { b: 2 })
  })

  withStorage('update, remove and touch of a missing record answer false and create nothing', async (t, storage) => {
    const id = generateId()
    t.false(await storage.update(id, 'a', 1, Date.now() + HOUR))
    t.false(await storage.remove(id, 'a', Date.now() + HOUR))
    t.false(await storage.touch(id, Date.now() + HOUR))
    t.is(await storage.get(id), undefined)
  })

  withStorage('delete removes the record; deleting a missing one succeeds', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({ a: 1 }))
    await storage.delete(id)
    t.is(await storage.get(id), undefined)
    await t.notThrowsAsync(storage.delete(id))
    await t.notThrowsAsync(storage.delete(generateId()))
  })

  withStorage('touch moves the idle deadline and keeps the data', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({ a: 1 }))
    const expiresAt = Date.now() + 5 * HOUR
    t.true(await storage.touch(id, expiresAt))
    const got = await storage.get(id)
    t.is(got!.expiresAt, expiresAt)
    t.deepEqual(got!.data, { a: 1 })
  })

  withStorage('expired records are never returned, and writes to them answer false', async (t, storage) => {
    const idle = generateId()
    const absolute = generateId()
    const now = Date.now()
    await storage.set(idle, record({ a: 1 }, { expiresAt: now - 1000 }))
    await storage.set(absolute, record({ a: 1 }, { absoluteExpiresAt: now - 1000 }))
    t.is(await storage.get(idle), undefined)
    t.is(await storage.get(absolute), undefined)
    t.false(await storage.update(idle, 'b', 2, now + HOUR))
    t.false(await storage.touch(absolute, now + HOUR))
    t.is(await storage.get(idle), undefined)
  })

  withStorage('a record expires while stored', async (t, storage) => {
    const id = generateId()
    const expiresAt = Date.now() + 2000
    await storage.set(id, record({ a: 1 }, { expiresAt }))
    const before = await storage.get(id)
    // Only assert liveness if the machine was fast enough to read before the deadline.
    if (Date.now() < expiresAt) t.truthy(before)
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 100))
    t.is(await storage.get(id), undefined)
  })

  withStorage('__proto__, constructor and prototype are ordinary keys', async (t, storage) => {
    const id = generateId()
    const data = JSON.parse('{"__proto__":{"polluted":true},"constructor":"c","prototype":[1]}') as SessionRecordInput['data']
    await storage.set(id, record(data))
    t.true(await storage.update(id, '__proto__', { polluted: 'yes' }, Date.now() + HOUR))
    const got = await storage.get(id)
    t.true(Object.hasOwn(got!.data, '__proto__'))
    t.deepEqual(got!.data['__proto__'], { polluted: 'yes' })
    t.is(got!.data['constructor'], 'c')
    t.deepEqual(got!.data['prototype'], [1])
    t.is(({} as Record<string, unknown>)['polluted'], undefined)
    t.is(Object.getPrototypeOf(got!.data) === Object.prototype || Object.getPrototypeOf(got!.data) === null, true)
  })

  withStorage('keys with dots, quotes, spaces and unicode are single keys', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({}))
    const keys = ['a.b', 'a[0]', '$x', 'quo"te', "ap'os", 'sp ace', 'ключ', 'back\\slash', '*']
    for (const key of keys) t.true(await storage.update(id, key, key, Date.now() + HOUR))
    const got = await storage.get(id)
    t.deepEqual(Object.keys(got!.data).sort(), [...keys].sort())
    for (const key of keys) t.is(got!.data[key], key)
    t.true(await storage.remove(id, 'a.b', Date.now() + HOUR))
    t.false(Object.hasOwn((await storage.get(id))!.data, 'a.b'))
  })

  withStorage('ids that differ only by case are different sessions', async (t, storage) => {
    const lower = 'a'.repeat(42) + 'A'
    const upper = 'A'.repeat(42) + 'A'
    await storage.set(lower, record({ who: 'lower' }))
    await storage.set(upper, record({ who: 'upper' }))
    t.is((await storage.get(lower))!.data['who'], 'lower')
    t.is((await storage.get(upper))!.data['who'], 'upper')
  })

  withStorage('concurrent updates of different keys all land', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({}))
    const expiresAt = Date.now() + HOUR
    await Promise.all(Array.from({ length: 20 }, (_, i) => storage.update(id, `k${i}`, i, expiresAt)))
    const got = await storage.get(id)
    t.is(Object.keys(got!.data).length, 20)
    for (let i = 0; i < 20; i++) t.is(got!.data[`k${i}`], i)
  })

  withAdmin('length, all and clear see live records only', async (t, storage) => {
    const live = [generateId(), generateId(), generateId()]
    for (const id of live) await storage.set(id, record({ id }))
    await storage.set(generateId(), record({ dead: true }, { expiresAt: Date.now() - 1 }))
    t.is(await storage.length(), 3)
    const seen: string[] = []
    for await (const [id, rec] of storage.all()) {
      seen.push(id)
      t.is(rec.data['id'], id)
    }
    t.deepEqual(seen.sort(), [...live].sort())
    await storage.clear()
    t.is(await storage.length(), 0)
    t.is(await storage.get(live[0]!), undefined)
  })

  withAdmin('cleanup deletes expired records and reports how many', async (t, storage) => {
    const now = Date.now()
    const keep = generateId()
    await storage.set(keep, record({ keep: true }))
    for (let i = 0; i < 5; i++) await storage.set(generateId(), record({ i }, { expiresAt: now - 1000 }))
    await storage.set(generateId(), record({ abs: true }, { absoluteExpiresAt: now - 1000 }))
    t.is(await storage.cleanup(now), 6)
    t.is(await storage.cleanup(now), 0)
    t.truthy(await storage.get(keep))
    t.is(await storage.length(), 1)
  })

  withBatch('batch applies operations in order and reports each outcome', async (t, storage, batch) => {
    const a = generateId()
    const b = generateId()
    const missing = generateId()
    const expiresAt = Date.now() + HOUR
    await storage.set(b, record({ old: true }))
    const outcomes = await batch([
      { type: 'set', id: a, record: record({ x: 1 }) },
      { type: 'update', id: a, key: 'y', value: 2, expiresAt },
      { type: 'remove', id: a, key: 'x', expiresAt },
      { type: 'update', id: missing, key: 'y', value: 2, expiresAt },
      { type: 'touch', id: b, expiresAt: expiresAt + 1000 },
      { type: 'delete', id: b },
      { type: 'touch', id: missing, expiresAt },
    ])
    t.deepEqual(outcomes, [true, true, true, false, true, true, false])
    t.deepEqual((await storage.get(a))!.data, { y: 2 })
    t.is(await storage.get(b), undefined)
    t.is(await storage.get(missing), undefined)
  })

  withBatch('a batch of many sessions lands whole', async (t, storage, batch) => {
    const ids = Array.from({ length: 300 }, () => generateId())
    const outcomes = await batch(ids.map((id, i) => ({ type: 'set' as const, id, record: record({ i }) })))
    t.is(outcomes.length, 300)
    t.true(outcomes.every((outcome) => outcome === true))
    for (const [i, id] of ids.entries()) t.is((await storage.get(id))!.data['i'], i)
  })

  withStorage('close is idempotent', async (t, storage) => {
    await storage.close()
    await t.notThrowsAsync(storage.close())
  })

  withStorage('-0 reads back as 0', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({ zero: -0, list: [-0] }))
    t.true(await storage.update(id, 'other', -0, Date.now() + HOUR))
    const got = await storage.get(id)
    t.true(Object.is(got!.data['zero'], 0))
    t.true(Object.is((got!.data['list'] as number[])[0], 0))
    t.true(Object.is(got!.data['other'], 0))
  })

  withKitStorage('"no absolute deadline" is undefined, however the record said it', async (t, storage) => {
    const id = generateId()
    await storage.set(id, { ...record({ a: 1 }), absoluteExpiresAt: null as never })
    const got = await storage.get(id)
    t.false('absoluteExpiresAt' in got! && got.absoluteExpiresAt !== undefined)
  })

  withKitStorage('a closed storage rejects every call with SESSION_CLOSED', async (t, storage) => {
    await storage.close()
    const id = generateId()
    const expiresAt = Date.now() + HOUR
    await rejectsWith(t, storage.get(id), 'SESSION_CLOSED')
    await rejectsWith(t, storage.set(id, record({})), 'SESSION_CLOSED')
    await rejectsWith(t, storage.update(id, 'a', 1, expiresAt), 'SESSION_CLOSED')
    await rejectsWith(t, storage.remove(id, 'a', expiresAt), 'SESSION_CLOSED')
    await rejectsWith(t, storage.delete(id), 'SESSION_CLOSED')
    await rejectsWith(t, storage.touch(id, expiresAt), 'SESSION_CLOSED')
    if (storage.batch !== undefined) await rejectsWith(t, storage.batch([{ type: 'delete', id }]), 'SESSION_CLOSED')
    if (capabilitiesOf(storage).admin) {
      const admin = storage as Admin
      await rejectsWith(t, admin.length(), 'SESSION_CLOSED')
      await rejectsWith(t, admin.cleanup(), 'SESSION_CLOSED')
      await rejectsWith(t, admin.clear(), 'SESSION_CLOSED')
      await rejectsWith(
        t,
        (async () => {
          for await (const _ of admin.all()) break
        })(),
        'SESSION_CLOSED',
      )
    }
  })

  withKitStorage('malformed operations reject with SESSION_INVALID_OPERATION and change nothing', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({ a: 1 }))
    await rejectsWith(t, storage.set(generateId(), { data: ['not', 'an', 'object'] } as never), 'SESSION_INVALID_OPERATION')
    await rejectsWith(t, storage.set(generateId(), record({}, { expiresAt: Number.NaN })), 'SESSION_INVALID_OPERATION')
    await rejectsWith(t, storage.update(id, 42 as never, 1, Date.now() + HOUR), 'SESSION_INVALID_OPERATION')
    await rejectsWith(t, storage.touch(id, 'later' as never), 'SESSION_INVALID_OPERATION')
    await rejectsWith(t, storage.update(id, 'big', 10n as never, Date.now() + HOUR), 'SESSION_INVALID_VALUE')
    t.deepEqual((await storage.get(id))!.data, { a: 1 })
    t.is(await storage.get(42 as never), undefined, 'an id that is not a string is no session')
  })

  withKitStorage('in a batch, a failed operation fails the later operations of its session only', async (t, storage) => {
    if (storage.batch === undefined) {
      t.pass('this storage does not declare batch')
      return
    }
    const [bad, good] = [generateId(), generateId()]
    const expiresAt = Date.now() + HOUR
    await storage.set(bad, record({ a: 1 }))
    const operations: StorageOperation[] = [
      { type: 'update', id: bad, key: 'b', value: 10n as never, expiresAt },
      { type: 'set', id: good, record: record({ fine: true }) },
      { type: 'update', id: bad, key: 'c', value: 3, expiresAt },
      { type: 'touch', id: 7 as never, expiresAt },
      { type: 'update', id: good, key: 'more', value: 2, expiresAt },
    ]
    const outcomes = await storage.batch(operations)
    t.true(isSessionError(outcomes[0], 'SESSION_INVALID_VALUE'))
    t.is(outcomes[1], true)
    t.is(outcomes[2], outcomes[0], 'the later operation of the failed session gets the same error, unapplied')
    t.true(isSessionError(outcomes[3], 'SESSION_INVALID_OPERATION'))
    t.is(outcomes[4], true)
    t.deepEqual((await storage.get(bad))!.data, { a: 1 })
    t.deepEqual((await storage.get(good))!.data, { fine: true, more: 2 })
  })

  test(`${name}: liveness and cleanup follow the storage's clock (its now option)`, async (t) => {
    if (options.openWithClock === undefined) {
      t.pass('no clock given for this storage')
      return
    }
    let now = Date.now() + 10 * HOUR
    const storage = await options.openWithClock(() => now)
    await run(t, storage, async () => {
      const [id, unread, kept] = [generateId(), generateId(), generateId()]
      await storage.set(id, { data: { a: 1 }, createdAt: now, expiresAt: now + 1000, absoluteExpiresAt: now + 5000 })
      await storage.set(unread, { data: {}, createdAt: now, expiresAt: now + 1000 })
      await storage.set(kept, { data: {}, createdAt: now, expiresAt: now + 100 * HOUR })
      t.truthy(await storage.get(id), 'live by the storage clock')
      now += 900
      t.true(await storage.touch(id, now + 1000))
      now += 900
      t.truthy(await storage.get(id), 'the touch moved the idle deadline')
      now += 1000
      t.is(await storage.get(id), undefined, 'past the idle deadline by the storage clock')
      t.false(await storage.update(id, 'b', 2, now + 1000))
      if (capabilitiesOf(storage).admin) {
        const admin = storage as Admin
        t.true((await admin.cleanup()) >= 1, 'cleanup() defaults to the storage clock')
        t.is(await admin.length(), 1, 'and keeps what is live by it')
        t.truthy(await storage.get(kept))
        t.is(await storage.get(unread), undefined)
      }
    })
  })
}

async function rejectsWith(t: ExecutionContext, promise: Promise<unknown>, code: SessionErrorCode): Promise<void> {
  const error = await t.throwsAsync(promise)
  t.true(
    isSessionError(error, code),
    `${code} expected, got ${error instanceof Error ? `${(error as { code?: string }).code}: ${error.message}` : String(error)}`,
  )
}
