import test, { type ExecutionContext } from 'ava'
import { isSessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { AbstractStorage, capabilitiesOf, type PrincipalSession, type Storage, type StorageAdmin } from '../../src/kit/index.js'
import type { SessionRecordInput } from '../../src/types.js'
import type { ContractOptions } from './storage-contract.js'

type Indexed = Storage & { findByPrincipal: NonNullable<Storage['findByPrincipal']> }

const HOUR = 3_600_000

function record(data: SessionRecordInput['data'], principal: string | undefined, overrides: Partial<SessionRecordInput> = {}): SessionRecordInput {
  const now = Date.now()
  const input: SessionRecordInput = { data, createdAt: now, expiresAt: now + HOUR, ...overrides }
  if (principal !== undefined) input.principal = principal
  return input
}

/** The ids `storage` lists for `principal`, in its order. */
async function idsOf(storage: Indexed, principal: string): Promise<string[]> {
  return (await storage.findByPrincipal(principal)).map((session) => session.id)
}

/**
 * The principal index part of the storage contract: run by {@link storageContract} for every
 * storage. Storages that declare `principals` keep the index right through every write, delete,
 * expiry and cleanup; the others say they do not index.
 */
export function principalContract(name: string, options: ContractOptions): void {
  const run = async (t: ExecutionContext, storage: Storage, body: (t: ExecutionContext, storage: Indexed) => Promise<void>): Promise<void> => {
    try {
      if (!capabilitiesOf(storage).principals) {
        t.pass('this storage does not index principals')
        return
      }
      await body(t, storage as Indexed)
    } finally {
      await storage.close()
      await options.dispose?.(storage)
    }
  }
  const withIndex = (title: string, body: (t: ExecutionContext, storage: Indexed) => Promise<void>): void => {
    test(`${name}: principals: ${title}`, async (t) => run(t, await options.open(), body))
  }

  test(`${name}: principals: findByPrincipal is offered exactly when principals is declared`, async (t) => {
    const storage = await options.open()
    try {
      if (capabilitiesOf(storage).principals) {
        t.is(typeof storage.findByPrincipal, 'function')
        return
      }
      if (typeof storage.findByPrincipal !== 'function') {
        t.pass('absent')
        return
      }
      const error = await t.throwsAsync(storage.findByPrincipal('42'))
      t.true(isSessionError(error, 'SESSION_INVALID_STATE'), 'refuses with a code, never an empty list')
    } finally {
      await storage.close()
      await options.dispose?.(storage)
    }
  })

  withIndex('a set indexes its principal; the list holds ids and timestamps, oldest first, no data', async (t, storage) => {
    const [older, newer, other, none] = [generateId(), generateId(), generateId(), generateId()]
    const now = Date.now()
    await storage.set(newer, record({ userId: 42, secret: 's' }, '42', { createdAt: now - 1000, issuer: 'cookie:sid' }))
    await storage.set(older, record({ userId: 42 }, '42', { createdAt: now - 5000, absoluteExpiresAt: now + 2 * HOUR }))
    await storage.set(other, record({ userId: 420 }, '420'))
    await storage.set(none, record({ anonymous: true }, undefined))
    t.is((await storage.get(newer))!.principal, '42', 'get returns the principal')
    t.is((await storage.get(none))!.principal, undefined)
    const listed = await storage.findByPrincipal('42')
    t.deepEqual(
      listed.map((session) => session.id),
      [older, newer],
    )
    const [first, second] = listed as [PrincipalSession, PrincipalSession]
    t.like(first, { id: older, createdAt: now - 5000, absoluteExpiresAt: now + 2 * HOUR, version: 1 })
    t.like(second, { id: newer, createdAt: now - 1000, issuer: 'cookie:sid', version: 1 })
    t.true(second.expiresAt > now)
    t.false('data' in second, 'no data')
    t.deepEqual(await idsOf(storage, '420'), [other], 'a principal that starts like another is its own')
    t.deepEqual(await idsOf(storage, '4'), [])
    t.deepEqual(await idsOf(storage, 'nobody'), [])
  })

  withIndex('principals are exact text: case, trailing spaces, quotes, separators and long values', async (t, storage) => {
    const values = ['Ada', 'ada', 'Ada ', 'a"b', 'a\u0000b', 'a\\', 'ü', 'x'.repeat(255), '€'.repeat(255), '😀'.repeat(127)]
    const ids = values.map(() => generateId())
    for (const [i, value] of values.entries()) await storage.set(ids[i]!, record({}, value))
    for (const [i, value] of values.entries()) t.deepEqual(await idsOf(storage, value), [ids[i]], JSON.stringify(value).slice(0, 20))
  })

  withIndex('an update or remove carrying a principal moves the session; one without keeps it', async (t, storage) => {
    const id = generateId()
    const expiresAt = Date.now() + 2 * HOUR
    await storage.set(id, record({ userId: 'ada' }, 'ada'))
    t.true(await storage.update(id, 'views', 1, expiresAt), 'another key')
    t.true(await storage.remove(id, 'views', expiresAt))
    t.true(await storage.touch(id, expiresAt + 1000))
    t.deepEqual(await idsOf(storage, 'ada'), [id], 'kept through other keys and a touch')
    t.true(await storage.update(id, 'userId', 'bob', expiresAt, undefined, 'bob'), 'the principal key set')
    t.deepEqual(await idsOf(storage, 'ada'), [])
    t.deepEqual(await idsOf(storage, 'bob'), [id])
    t.is((await storage.get(id))!.principal, 'bob')
    t.true(await storage.remove(id, 'userId', expiresAt, undefined, null), 'the principal key removed')
    t.deepEqual(await idsOf(storage, 'bob'), [])
    t.is((await storage.get(id))!.principal, undefined)
    t.true(await storage.update(id, 'userId', 'cy', expiresAt, undefined, 'cy'), 'set again')
    t.deepEqual(await idsOf(storage, 'cy'), [id])
    t.true(await storage.update(id, 'userId', null, expiresAt, undefined, null), 'set to something that is no principal')
    t.deepEqual(await idsOf(storage, 'cy'), [])
  })

  withIndex('a whole-record set replaces the principal: another one, or none', async (t, storage) => {
    const id = generateId()
    await storage.set(id, record({ userId: 'ada' }, 'ada'))
    await storage.set(id, record({ userId: 'bob' }, 'bob'))
    t.deepEqual(await idsOf(storage, 'ada'), [])
    t.deepEqual(await idsOf(storage, 'bob'), [id])
    t.is((await storage.findByPrincipal('bob'))[0]!.version, 2)
    await storage.set(id, record({}, undefined))
    t.deepEqual(await idsOf(storage, 'bob'), [])
  })

  withIndex('a renew (a set of the new id, then a delete of the old one) moves the entry to the new id', async (t, storage) => {
    const [oldId, newId] = [generateId(), generateId()]
    await storage.set(oldId, record({ userId: 'ada' }, 'ada'))
    await storage.set(newId, record({ userId: 'ada' }, 'ada'))
    await storage.delete(oldId)
    t.deepEqual(await idsOf(storage, 'ada'), [newId])
  })

  withIndex('a delete, conditional or not, takes the session out of the index', async (t, storage) => {
    const [a, b] = [generateId(), generateId()]
    await storage.set(a, record({}, 'ada'))
    await storage.set(b, record({}, 'ada'))
    await storage.delete(a)
    t.is(await storage.delete(b, 7), 'conflict', 'at another version: kept')
    t.deepEqual(await idsOf(storage, 'ada'), [b])
    await storage.delete(b, 1)
    t.deepEqual(await idsOf(storage, 'ada'), [])
  })

  withIndex('a write that does not apply changes no principal', async (t, storage) => {
    const [id, missing] = [generateId(), generateId()]
    const expiresAt = Date.now() + HOUR
    await storage.set(id, record({ userId: 'ada' }, 'ada'))
    t.is(await storage.update(id, 'userId', 'bob', expiresAt, 5, 'bob'), 'conflict')
    t.is(await storage.remove(id, 'userId', expiresAt, 5, null), 'conflict')
    t.false(await storage.update(missing, 'userId', 'bob', expiresAt, undefined, 'bob'), 'no record')
    t.deepEqual(await idsOf(storage, 'ada'), [id])
    t.deepEqual(await idsOf(storage, 'bob'), [])
    t.true(await storage.update(id, 'userId', 'bob', expiresAt, 1, 'bob'), 'at its version')
    t.deepEqual(await idsOf(storage, 'bob'), [id])
  })

  withIndex('batches carry principals in array order', async (t, storage) => {
    if (storage.batch === undefined) {
      t.pass('no batch')
      return
    }
    const [a, b, c] = [generateId(), generateId(), generateId()]
    const expiresAt = Date.now() + HOUR
    await storage.set(c, record({ userId: 'cy' }, 'cy'))
    const outcomes = await storage.batch([
      { type: 'set', id: a, record: record({}, undefined) },
      { type: 'set', id: b, record: record({ userId: 'ada' }, 'ada') },
      { type: 'update', id: a, key: 'userId', value: 'ada', expiresAt, principal: 'ada' },
      { type: 'update', id: b, key: 'userId', value: 'bob', expiresAt, principal: 'bob' },
      { type: 'update', id: b, key: 'views', value: 1, expiresAt },
      { type: 'remove', id: c, key: 'userId', expiresAt, principal: null },
      { type: 'update', id: a, key: 'userId', value: 'bob', expiresAt, principal: 'bob' },
      { type: 'update', id: a, key: 'userId', value: 'ada', expiresAt, principal: 'ada' },
    ])
    t.deepEqual(outcomes, [true, true, true, true, true, true, true, true])
    t.deepEqual(await idsOf(storage, 'ada'), [a])
    t.deepEqual(await idsOf(storage, 'bob'), [b])
    t.deepEqual(await idsOf(storage, 'cy'), [])
    t.is((await storage.get(b))!.principal, 'bob')
  })

  withIndex(
    'a principal that is not well-formed text of 1 to 255 characters is refused (a lone surrogate would become U+FFFD in a UTF-8 column, the principal of another user)',
    async (t, storage) => {
      if (!(storage instanceof AbstractStorage)) {
        t.pass('not built on the kit')
        return
      }
      const id = generateId()
      const expiresAt = Date.now() + HOUR
      for (const bad of ['', 'x'.repeat(256), 42 as unknown as string, 'ada\ud800', '\udc00']) {
        const error = await t.throwsAsync(storage.set(id, record({}, bad)))
        t.true(isSessionError(error, 'SESSION_INVALID_OPERATION'))
        const found = await t.throwsAsync(storage.findByPrincipal(bad))
        t.true(isSessionError(found, 'SESSION_INVALID_OPERATION'))
      }
      await storage.set(id, record({}, undefined))
      const error = await t.throwsAsync(storage.update(id, 'userId', 1, expiresAt, undefined, 7 as unknown as string))
      t.true(isSessionError(error, 'SESSION_INVALID_OPERATION'))
    },
  )

  withIndex('clear() empties the index', async (t, storage) => {
    if (!capabilitiesOf(storage).admin) {
      t.pass('no admin')
      return
    }
    await storage.set(generateId(), record({}, 'ada'))
    await (storage as Indexed & StorageAdmin).clear()
    t.deepEqual(await idsOf(storage, 'ada'), [])
  })

  test(`${name}: principals: expired sessions are not listed; a touch keeps one listed; cleanup() and a later set keep the index right`, async (t) => {
    if (options.openWithClock === undefined) {
      t.pass('no clock given for this storage')
      return
    }
    let now = Date.now() + 10 * HOUR
    await run(t, await options.openWithClock(() => now), async (t, storage) => {
      const [touched, idle, absolute, reused] = [generateId(), generateId(), generateId(), generateId()]
      await storage.set(touched, { data: {}, createdAt: now, expiresAt: now + 1000, principal: 'ada' })
      await storage.set(idle, { data: {}, createdAt: now + 1, expiresAt: now + 1000, principal: 'ada' })
      await storage.set(absolute, { data: {}, createdAt: now + 2, expiresAt: now + HOUR, absoluteExpiresAt: now + 1500, principal: 'ada' })
      await storage.set(reused, { data: {}, createdAt: now + 3, expiresAt: now + 1000, principal: 'ada' })
      t.deepEqual(await idsOf(storage, 'ada'), [touched, idle, absolute, reused])
      now += 900
      t.true(await storage.touch(touched, now + 1000))
      now += 200
      t.deepEqual(await idsOf(storage, 'ada'), [touched, absolute], 'past their idle deadline: not listed')
      now += 500
      t.deepEqual(await idsOf(storage, 'ada'), [touched], 'past its absolute deadline: not listed')
      await storage.set(reused, { data: {}, createdAt: now, expiresAt: now + HOUR, principal: 'bob' })
      t.deepEqual(await idsOf(storage, 'bob'), [reused], 'an expired id written again is indexed under its new principal')
      if (capabilitiesOf(storage).admin) {
        t.is(await (storage as Indexed & StorageAdmin).cleanup(), 2)
        t.deepEqual(await idsOf(storage, 'ada'), [touched], 'after cleanup')
        t.deepEqual(await idsOf(storage, 'bob'), [reused])
      }
      now += 1000
      t.deepEqual(await idsOf(storage, 'ada'), [])
    })
  })
}
