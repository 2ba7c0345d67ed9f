import test, { type ExecutionContext } from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { isSessionError, type SessionErrorCode } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { MAX_DEPTH, capabilitiesOf, type Storage, type StorageLimits } from '../../src/kit/index.js'
import { SessionManager } from '../../src/session-manager.js'
import type { JsonValue, SessionRecordInput } from '../../src/types.js'
import { FakeResponse, fakeRequest } from './fake-http.js'
import { TEST_KEY } from './manager.js'
import type { ContractOptions } from './storage-contract.js'

const HOUR = 3_600_000

function record(data: SessionRecordInput['data']): SessionRecordInput {
  const now = Date.now()
  return { data, createdAt: now, expiresAt: now + HOUR }
}

/** A value `depth` levels deep (a scalar is 0), objects and arrays in turn. */
export function nested(depth: number): JsonValue {
  let value: JsonValue = 'leaf'
  for (let level = 0; level < depth; level++) value = level % 2 === 0 ? { level: value } : [value, level]
  return value
}

function limitsOf(storage: Storage): StorageLimits {
  return capabilitiesOf(storage).limits ?? {}
}

/**
 * The limits part of the storage contract, run by `storageContract` for every storage: a storage
 * holds everything up to the limits it declares (`capabilities.limits`; without one, nesting to
 * {@link MAX_DEPTH} and any Unicode) through every kind of write, and a manager on it refuses a
 * value beyond them in `set()` with a coded error, before the cache or the storage changes.
 * That a backend really fails beyond its declared limit is each backend's own test.
 */
export function limitsContract(name: string, options: ContractOptions): void {
  const withStorage = (title: string, body: (t: ExecutionContext, storage: Storage) => Promise<void>): void => {
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

  withStorage('limits: holds a value as deep as it declares through set, update and batch (conditional or not)', async (t, storage) => {
    const deepest = nested(limitsOf(storage).maxDepth ?? MAX_DEPTH)
    const id = generateId()
    await storage.set(id, record({ deep: deepest }))
    t.deepEqual((await storage.get(id))?.data['deep'], deepest, 'set')
    t.true(await storage.update(id, 'again', deepest, Date.now() + HOUR), 'update')
    t.deepEqual((await storage.get(id))?.data['again'], deepest)
    if (storage.batch !== undefined) {
      const version = (await storage.get(id))!.version
      const other = generateId()
      const outcomes = await storage.batch([
        { type: 'update', id, key: 'batched', value: deepest, expiresAt: Date.now() + HOUR, ifVersion: version },
        { type: 'set', id: other, record: record({ deep: deepest }), ifVersion: 0 },
        { type: 'update', id: other, key: 'unconditional', value: deepest, expiresAt: Date.now() + HOUR },
      ])
      t.deepEqual(outcomes, [true, true, true], 'batch')
      t.deepEqual((await storage.get(id))?.data['batched'], deepest)
      t.deepEqual((await storage.get(other))?.data, { deep: deepest, unconditional: deepest })
    }
  })

  withStorage('limits: keys and strings with a lone surrogate round-trip unless it declares well-formed text', async (t, storage) => {
    const { wellFormedKeys = false, wellFormedValues = false } = limitsOf(storage)
    const id = generateId()
    await storage.set(id, record({ plain: 'ok' }))
    if (!wellFormedKeys) {
      t.true(await storage.update(id, 'key\ud800', 1, Date.now() + HOUR))
      t.is((await storage.get(id))?.data['key\ud800'], 1, 'a key with a lone surrogate')
    }
    if (!wellFormedValues) {
      const value = { text: 'x\udc00', list: ['\ud83d'], ['inner\ud800']: true }
      t.true(await storage.update(id, 'lone', value, Date.now() + HOUR))
      t.deepEqual((await storage.get(id))?.data['lone'], value, 'strings and nested keys with lone surrogates')
    }
    // Well-formed text outside the BMP always round-trips.
    t.true(await storage.update(id, 'emoji 🍪', '☃ 🍪', Date.now() + HOUR))
    t.is((await storage.get(id))?.data['emoji 🍪'], '☃ 🍪')
  })

  withStorage('limits: holds data of the maxDataBytes it declares', async (t, storage) => {
    const { maxDataBytes } = limitsOf(storage)
    if (maxDataBytes === undefined) {
      t.pass('this storage declares no data size limit')
      return
    }
    const data = { big: 'x'.repeat(maxDataBytes - '{"big":""}'.length) }
    t.is(Buffer.byteLength(JSON.stringify(data)), maxDataBytes)
    const id = generateId()
    await storage.set(id, record(data))
    t.is(((await storage.get(id))?.data['big'] as string).length, data.big.length)
  })

  withStorage('limits: a manager on it refuses a value beyond them in set(), before the cache or the storage changes', async (t, storage) => {
    const limits = limitsOf(storage)
    const maxDepth = limits.maxDepth ?? MAX_DEPTH
    const manager = new SessionManager({ storage, identities: [new CookieIdentity({ keys: [TEST_KEY] })] })
    const errors: unknown[] = []
    manager.on('error', (error) => errors.push(error))
    const session = await manager.load(fakeRequest(), new FakeResponse())
    await session.set('kept', nested(maxDepth))
    const stored = await storage.get(session.id)
    t.deepEqual(stored?.data, { kept: nested(maxDepth) })
    const refuse = async (write: () => Promise<unknown>, code: SessionErrorCode, what: string): Promise<void> => {
      const error = await t.throwsAsync(write)
      t.true(isSessionError(error, code), `${what}: ${code} expected, got ${String(error)}`)
    }
    await refuse(() => session.set('deep', nested(maxDepth + 1)), 'SESSION_INVALID_VALUE', 'one level deeper')
    await refuse(() => session.update('kept', () => nested(maxDepth + 1)), 'SESSION_INVALID_VALUE', 'update() one level deeper')
    if (limits.wellFormedKeys === true) {
      await refuse(() => session.set('key\ud800', 1), 'SESSION_INVALID_KEY', 'a key with a lone surrogate')
      await refuse(() => session.remove('key\ud800'), 'SESSION_INVALID_KEY', 'remove() of a key with a lone surrogate')
    }
    if (limits.wellFormedValues === true) {
      await refuse(() => session.set('text', 'x\ud800'), 'SESSION_INVALID_VALUE', 'a string with a lone surrogate')
      await refuse(() => session.set('nested', { list: [{ ['k\udc00']: 1 }] }), 'SESSION_INVALID_VALUE', 'a nested key with a lone surrogate')
    }
    t.deepEqual(session.getAll(), { kept: nested(maxDepth) }, 'the cache is as it was')
    t.deepEqual((await storage.get(session.id))?.version, stored?.version, 'the storage is as it was')
    t.deepEqual(errors, [], 'nothing reached the storage to fail there')
    await manager.close()
  })
}
