import test from 'ava'
import { generateId } from '../../src/ids.js'
import type { SessionRecordInput, Storage } from '../../src/types.js'

/** How a storage's test file hands fresh storages to the contract suite. */
export interface ContractOptions {
  /** A new, empty storage (its own table, location or prefix). */
  open(): Promise<Storage>
  /** Optional extra teardown after the storage was closed (drop the table, remove the folder). */
  dispose?(storage: Storage): Promise<void>
}

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
  const withStorage = (title: string, body: (t: import('ava').ExecutionContext, storage: Storage) => Promise<void>): void => {
    test(`${name}: ${title}`, async (t) => {
      const storage = await options.open()
      try {
        await body(t, storage)
      } finally {
        await storage.close()
        await options.dispose?.(storage)
      }
    })
  }

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

  withStorage('length, all and clear see live records only', async (t, storage) => {
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

  withStorage('cleanup deletes expired records and reports how many', async (t, storage) => {
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

  withStorage('batch applies operations in order and reports each outcome', async (t, storage) => {
    if (storage.batch === undefined) {
      t.pass('this storage has no batch entry point')
      return
    }
    const a = generateId()
    const b = generateId()
    const missing = generateId()
    const expiresAt = Date.now() + HOUR
    await storage.set(b, record({ old: true }))
    const outcomes = await storage.batch([
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

  withStorage('a batch of many sessions lands whole', async (t, storage) => {
    if (storage.batch === undefined) {
      t.pass('this storage has no batch entry point')
      return
    }
    const ids = Array.from({ length: 300 }, () => generateId())
    const outcomes = await storage.batch(ids.map((id, i) => ({ type: 'set' as const, id, record: record({ i }) })))
    t.is(outcomes.length, 300)
    t.true(outcomes.every((outcome) => outcome === true))
    for (const [i, id] of ids.entries()) t.is((await storage.get(id))!.data['i'], i)
  })

  withStorage('close is idempotent', async (t, storage) => {
    await storage.close()
    await t.notThrowsAsync(storage.close())
  })
}
