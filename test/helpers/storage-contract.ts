import test, { type ExecutionContext } from 'ava'
import { isSessionError, type SessionErrorCode } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { AbstractStorage, capabilitiesOf, type BatchOutcome, type Storage, type StorageAdmin, type StorageOperation } from '../../src/kit/index.js'
import type { SessionRecord, SessionRecordInput } from '../../src/types.js'
import { limitsContract } from './limits-contract.js'
import { principalContract } from './principal-contract.js'

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
  /**
   * Optional, for storages whose conditional writes hold across processes: another storage on
   * the same records as `storage` (the same table, with its own connections), as another
   * process would open it. The suite closes it; `dispose` still gets only the first one.
   */
  openTwin?(storage: Storage): Promise<Storage>
}

type Admin = Storage & StorageAdmin
type Versions = NonNullable<Storage['versions']>

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
    if (declared.shared) t.is(typeof storage.versions, 'function', 'a shared storage offers versions()')
    if (!declared.admin) {
      // Not declared: absent, or there but refusing with a code.
      for (const method of ['length', 'clear', 'cleanup'] as const) {
        const call = admin[method]
        if (typeof call !== 'function') continue
        await rejectsWith(t, (call as () => Promise<unknown>).call(storage), 'SESSION_INVALID_STATE')
      }
    }
  })

  withStorage('open() resolves on a working backend, again when called again, and the storage then works', async (t, storage) => {
    if (storage.open === undefined) {
      t.pass('this storage has no open()')
      return
    }
    await storage.open()
    await storage.open()
    t.is(await storage.get('never-stored'), undefined)
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

  withStorage('the issuer round-trips: set writes it, every other write keeps it, a set without one clears it', async (t, storage) => {
    const id = generateId()
    const issuer = 'cookie:shop_sid'
    await storage.set(id, record({ a: 1 }, { issuer }))
    t.is((await storage.get(id))!.issuer, issuer)
    const expiresAt = Date.now() + 2 * HOUR
    t.true(await storage.update(id, 'b', 2, expiresAt))
    t.true(await storage.remove(id, 'a', expiresAt))
    t.true(await storage.touch(id, expiresAt + 1000))
    t.true(await storage.update(id, 'c', 3, expiresAt, 3))
    const kept = await storage.get(id)
    t.is(kept!.issuer, issuer)
    t.deepEqual(kept!.data, { b: 2, c: 3 })
    // A conditional set (a renew's new record is one) keeps what it is given.
    const renewed = generateId()
    t.not(await storage.set(renewed, record({ b: 2 }, { issuer: 'header:x-session-token' }), 0), 'conflict')
    t.is((await storage.get(renewed))!.issuer, 'header:x-session-token')
    await storage.set(id, record({ d: 4 }))
    t.is((await storage.get(id))!.issuer, undefined, 'a set without an issuer leaves none')
    // Any identity name, up to 255 characters.
    const long = `header:${'x'.repeat(247)}é`
    await storage.set(id, record({}, { issuer: long }))
    t.is((await storage.get(id))!.issuer, long)
  })

  withBatch('the issuer round-trips through batched sets and key changes', async (t, storage, batch) => {
    const [one, two] = [generateId(), generateId()]
    const expiresAt = Date.now() + HOUR
    const outcomes = await batch([
      { type: 'set', id: one, record: record({ a: 1 }, { issuer: 'cookie:sid' }) },
      { type: 'set', id: two, record: record({ a: 1 }) },
      { type: 'update', id: one, key: 'b', value: 2, expiresAt },
      { type: 'touch', id: one, expiresAt: expiresAt + 1 },
    ])
    t.deepEqual(outcomes, [true, true, true, true])
    t.is((await storage.get(one))!.issuer, 'cookie:sid')
    t.is((await storage.get(two))!.issuer, undefined)
  })

  withAdmin('all() lists each record with its issuer', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({ a: 1 }, { issuer: 'cookie:admin_sid' }))
    const listed = new Map<string, SessionRecord>()
    for await (const [listedId, listedRecord] of storage.all()) listed.set(listedId, listedRecord)
    t.is(listed.get(id)?.issuer, 'cookie:admin_sid')
  })

  withKitStorage('an issuer that is not a string of 1 to 255 characters is refused before anything is written', async (t, storage) => {
    const id = generateId()
    for (const issuer of ['', 'x'.repeat(256), 42]) {
      await rejectsWith(t, storage.set(id, record({ a: 1 }, { issuer: issuer as string })), 'SESSION_INVALID_OPERATION')
    }
    t.is(await storage.get(id), undefined)
    await storage.set(id, { ...record({ a: 1 }), issuer: null as never })
    t.is((await storage.get(id))!.issuer, undefined, 'null is no issuer')
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

  /** A test of `versions()`: run where the storage has it (every shared storage must, see the capabilities test). */
  const withVersions = (title: string, body: (t: ExecutionContext, storage: Storage, versions: Versions) => Promise<void>): void => {
    withStorage(title, async (t, storage) => {
      if (storage.versions === undefined) {
        t.pass('this storage has no versions()')
        return
      }
      await body(t, storage, storage.versions.bind(storage))
    })
  }

  const versionOf = async (storage: Storage, id: string): Promise<number | undefined> => (await storage.get(id))?.version

  withStorage('the version is 1 on creation, goes up by one per data write, and a touch keeps it', async (t, storage) => {
    const id = generateId()
    const expiresAt = Date.now() + HOUR
    await storage.set(id, record({ a: 1 }))
    t.is(await versionOf(storage, id), 1)
    t.true(await storage.update(id, 'b', 2, expiresAt))
    t.is(await versionOf(storage, id), 2)
    t.true(await storage.remove(id, 'a', expiresAt))
    t.is(await versionOf(storage, id), 3)
    t.true(await storage.touch(id, expiresAt + 1000))
    t.is(await versionOf(storage, id), 3, 'a touch is not a data write')
    await storage.set(id, record({ c: 3 }))
    t.is(await versionOf(storage, id), 4)
  })

  withStorage('a conditional write at the live version applies and leaves the version at ifVersion + 1', async (t, storage) => {
    const id = generateId()
    const expiresAt = Date.now() + 2 * HOUR
    t.is(await storage.set(id, record({ a: 1 }), 0), undefined, 'ifVersion 0: there is no record yet')
    t.is(await versionOf(storage, id), 1)
    t.is(await storage.update(id, 'b', 2, expiresAt, 1), true)
    t.is(await versionOf(storage, id), 2)
    t.is(await storage.remove(id, 'a', expiresAt, 2), true)
    const removed = await storage.get(id)
    t.deepEqual(removed!.data, { b: 2 })
    t.is(removed!.version, 3)
    t.is(removed!.expiresAt, expiresAt)
    t.is(await storage.set(id, record({ c: 3 }), 3), undefined)
    t.is(await versionOf(storage, id), 4)
    t.is(await storage.delete(id, 4), undefined)
    t.is(await storage.get(id), undefined)
  })

  withStorage('a conditional write at another version answers conflict and writes nothing', async (t, storage) => {
    const id = generateId()
    const input = record({ a: 1, b: 'two' })
    await storage.set(id, input)
    t.true(await storage.update(id, 'a', 2, input.expiresAt))
    const before = await storage.get(id)
    t.is(before!.version, 2)
    const later = Date.now() + 5 * HOUR
    t.is(await storage.update(id, 'a', 'stale', later, 1), 'conflict')
    t.is(await storage.update(id, 'new', 'stale', later, 3), 'conflict', 'a version ahead of the record conflicts too')
    t.is(await storage.remove(id, 'b', later, 1), 'conflict')
    t.is(await storage.set(id, record({ replaced: true }, { expiresAt: later }), 1), 'conflict')
    t.is(await storage.set(id, record({ replaced: true }, { expiresAt: later }), 0), 'conflict', 'ifVersion 0: a live record is there')
    t.is(await storage.delete(id, 1), 'conflict')
    t.deepEqual(await storage.get(id), before, 'data, deadline and version unchanged')
  })

  withStorage(
    'no live record: a conditional update or remove answers false (missing wins over conflict), a set conflicts, a delete resolves',
    async (t, storage) => {
      const [missing, expired] = [generateId(), generateId()]
      const now = Date.now()
      await storage.set(expired, record({ a: 1 }, { expiresAt: now - 1000 }))
      for (const id of [missing, expired]) {
        t.is(await storage.update(id, 'a', 2, now + HOUR, 1), false)
        t.is(await storage.remove(id, 'a', now + HOUR, 1), false)
        t.is(await storage.set(id, record({ a: 2 }), 1), 'conflict')
        t.is(await storage.delete(id, 1), undefined, 'nothing to delete')
        t.is(await storage.get(id), undefined, 'and nothing was created')
      }
    },
  )

  withStorage('a record that expired counts as none: set with ifVersion 0 replaces it, and any set starts the version over', async (t, storage) => {
    const [conditional, unconditional] = [generateId(), generateId()]
    const now = Date.now()
    for (const id of [conditional, unconditional]) {
      await storage.set(id, record({ old: true }))
      t.true(await storage.update(id, 'n', 1, now + HOUR))
      t.true(await storage.touch(id, now - 1000))
    }
    t.is(await storage.set(conditional, record({ fresh: true }), 0), undefined)
    await storage.set(unconditional, record({ fresh: true }))
    for (const id of [conditional, unconditional]) {
      const got = await storage.get(id)
      t.deepEqual(got!.data, { fresh: true })
      t.is(got!.version, 1)
    }
  })

  withKitStorage('an ifVersion that is not a non-negative integer is SESSION_INVALID_OPERATION', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({ a: 1 }))
    const expiresAt = Date.now() + HOUR
    await rejectsWith(t, storage.update(id, 'a', 2, expiresAt, -1), 'SESSION_INVALID_OPERATION')
    await rejectsWith(t, storage.remove(id, 'a', expiresAt, 1.5), 'SESSION_INVALID_OPERATION')
    await rejectsWith(t, storage.set(id, record({}), '1' as never), 'SESSION_INVALID_OPERATION')
    await rejectsWith(t, storage.delete(id, Number.NaN), 'SESSION_INVALID_OPERATION')
    t.like(await storage.get(id), { data: { a: 1 }, version: 1 })
  })

  withBatch('a batch counts data writes only: set, update and remove add one each, a touch none', async (t, storage, batch) => {
    const id = generateId()
    const expiresAt = Date.now() + HOUR
    const outcomes = await batch([
      { type: 'set', id, record: record({ a: 1 }) },
      { type: 'update', id, key: 'b', value: 2, expiresAt, ifVersion: 1 },
      { type: 'touch', id, expiresAt: expiresAt + 1000 },
      { type: 'remove', id, key: 'a', expiresAt: expiresAt + 2000, ifVersion: 2 },
    ])
    t.deepEqual(outcomes, [true, true, true, true])
    const got = await storage.get(id)
    t.deepEqual(got!.data, { b: 2 })
    t.is(got!.version, 3)
    t.is(got!.expiresAt, expiresAt + 2000)
  })

  withBatch('a batch of conditional writes: a conflict stops the later operations of its id, and only those', async (t, storage, batch) => {
    const [a, b, c] = [generateId(), generateId(), generateId()]
    const expiresAt = Date.now() + HOUR
    await storage.set(a, record({ n: 0 }))
    await storage.set(b, record({ n: 0 }))
    const before = await storage.get(b)
    const operations: StorageOperation[] = [
      { type: 'update', id: a, key: 'n', value: 1, expiresAt, ifVersion: 1 },
      { type: 'update', id: b, key: 'n', value: 1, expiresAt: expiresAt + 1, ifVersion: 5 },
      { type: 'update', id: a, key: 'n', value: 2, expiresAt, ifVersion: 2 },
      { type: 'set', id: c, record: record({ n: 0 }), ifVersion: 0 },
      { type: 'update', id: b, key: 'n', value: 2, expiresAt: expiresAt + 1, ifVersion: 1 },
      { type: 'touch', id: b, expiresAt: expiresAt + 1 },
      { type: 'update', id: c, key: 'n', value: 1, expiresAt, ifVersion: 1 },
      { type: 'remove', id: a, key: 'n', expiresAt, ifVersion: 2 },
      { type: 'update', id: a, key: 'm', value: 3, expiresAt, ifVersion: 3 },
      { type: 'delete', id: c, ifVersion: 2 },
    ]
    const outcomes = await batch(operations)
    t.deepEqual(outcomes, [true, 'conflict', true, true, 'conflict', 'conflict', true, 'conflict', 'conflict', true])
    const gotA = await storage.get(a)
    t.deepEqual(gotA!.data, { n: 2 }, 'the writes of a before its conflict landed, none after')
    t.is(gotA!.version, 3)
    t.deepEqual(await storage.get(b), before, 'nothing of b was written, not even the touch after its conflict')
    t.is(await storage.get(c), undefined)
  })

  withVersions('versions() gives the versions of live records and leaves out missing and expired ones', async (t, storage, versions) => {
    const [one, three, expired, missing] = [generateId(), generateId(), generateId(), generateId()]
    const now = Date.now()
    await storage.set(one, record({}))
    await storage.set(three, record({}))
    t.true(await storage.update(three, 'a', 1, now + HOUR))
    t.true(await storage.update(three, 'b', 2, now + HOUR))
    t.true(await storage.touch(three, now + 2 * HOUR))
    await storage.set(expired, record({}, { expiresAt: now - 1000 }))
    const found = await versions([one, three, expired, missing, one])
    t.deepEqual(Object.fromEntries(found), { [one]: 1, [three]: 3 })
    t.is((await versions([])).size, 0)
  })

  withVersions('versions() of many ids at once (more than one request of a bounded backend)', async (t, storage, versions) => {
    const ids = Array.from({ length: 250 }, () => generateId())
    const live = ids.filter((_, i) => i % 5 !== 0)
    if (storage.batch !== undefined) await storage.batch(live.map((id) => ({ type: 'set' as const, id, record: record({}) })))
    else for (const id of live) await storage.set(id, record({}))
    await storage.update(live[0]!, 'a', 1, Date.now() + HOUR)
    const found = await versions(ids)
    t.is(found.size, live.length)
    t.is(found.get(live[0]!), 2)
    for (const id of live.slice(1)) t.is(found.get(id), 1)
  })

  test(`${name}: two storages on the same records: of two conditional writes against one version, exactly one applies`, async (t) => {
    if (options.openTwin === undefined) {
      t.pass('no second storage on the same records for this storage')
      return
    }
    const storage = await options.open()
    const twin = await options.openTwin(storage)
    try {
      await run(t, storage, async () => {
        const id = generateId()
        const expiresAt = Date.now() + HOUR
        const created = await Promise.all([storage.set(id, record({ by: 'first' }), 0), twin.set(id, record({ by: 'twin' }), 0)])
        t.deepEqual([...created].sort(), ['conflict', undefined].sort(), 'one creation, one conflict')
        const creator = created[0] === undefined ? 'first' : 'twin'
        t.like(await twin.get(id), { data: { by: creator }, version: 1 })
        for (let version = 1; version <= 8; version++) {
          const writes: Array<Promise<boolean | 'conflict' | BatchOutcome[]>> =
            version % 2 === 1 || storage.batch === undefined || twin.batch === undefined
              ? [storage.update(id, 'n', `first ${version}`, expiresAt, version), twin.update(id, 'n', `twin ${version}`, expiresAt, version)]
              : [
                  storage.batch([{ type: 'update', id, key: 'n', value: `first ${version}`, expiresAt, ifVersion: version }]),
                  twin.batch([{ type: 'update', id, key: 'n', value: `twin ${version}`, expiresAt, ifVersion: version }]),
                ]
          const outcomes = (await Promise.all(writes)).map((outcome) => (Array.isArray(outcome) ? outcome[0] : outcome))
          t.deepEqual([...outcomes].sort(), [true, 'conflict'].sort(), `version ${version}: one applies, one conflicts`)
          const got = await storage.get(id)
          t.is(got!.version, version + 1)
          t.is(got!.data['n'], `${outcomes[0] === true ? 'first' : 'twin'} ${version}`)
        }
        const deletes = await Promise.all([storage.delete(id, 9), twin.update(id, 'n', 'last', expiresAt, 9)])
        t.true(deletes[0] === 'conflict' ? deletes[1] === true : deletes[1] === false, 'the delete and the update do not both apply')
      })
    } finally {
      await twin.close()
    }
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

  principalContract(name, options)
  limitsContract(name, options)
}

async function rejectsWith(t: ExecutionContext, promise: Promise<unknown>, code: SessionErrorCode): Promise<void> {
  const error = await t.throwsAsync(promise)
  t.true(
    isSessionError(error, code),
    `${code} expected, got ${error instanceof Error ? `${(error as { code?: string }).code}: ${error.message}` : String(error)}`,
  )
}
