import test from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import type { SessionRecord } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { fakeRequest, FakeResponse } from '../helpers/fake-http.js'
import { FaultStorage } from '../helpers/storage-double.js'

// A storage that answers `get` with something unusable: a corrupt row, a record of another id,
// a record the storage should have known was expired. The manager must treat it as no session
// (reporting SESSION_INVALID_RECORD on its error event where it is corrupt), hand out a fresh
// session under a new id, and never write over the bad record.

const HOUR = 3_600_000

function valid(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now()
  return { data: { user: 'ada' }, createdAt: now, expiresAt: now + HOUR, version: 1, ...overrides }
}

async function resolveForged(raw: unknown) {
  const storage = new FaultStorage(new MemoryStorage())
  const id = generateId()
  storage.forge(id, raw)
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })] })
  const errors: Error[] = []
  manager.on('error', (error) => errors.push(error))
  const res = new FakeResponse()
  const session = await manager.load(fakeRequest({ cookie: `sid=${id}` }), res)
  return { storage, manager, id, session, res, errors }
}

function deep(depth: number): unknown {
  let value: unknown = 1
  for (let i = 0; i < depth; i++) value = { d: value }
  return value
}

const corrupt: ReadonlyArray<[string, unknown]> = [
  ['a string that is not JSON', 'not json {'],
  ['a JSON text instead of an object', JSON.stringify(valid())],
  ['a number', 42],
  ['true', true],
  ['an empty object (no metadata)', {}],
  ['data only, no timestamps', { data: { user: 'ada' } }],
  ['timestamps only, no data', { createdAt: Date.now(), expiresAt: Date.now() + HOUR, version: 1 }],
  ['data that is a string', valid({ data: 'user=ada' as never })],
  ['data that is an array', valid({ data: ['ada'] as never })],
  ['data that is null', valid({ data: null as never })],
  ['data that is a Date', valid({ data: new Date() as never })],
  ['data with a foreign prototype', valid({ data: Object.create({ admin: true }) as never })],
  ['expiresAt as a string', valid({ expiresAt: String(Date.now() + HOUR) as never })],
  ['expiresAt NaN', valid({ expiresAt: NaN })],
  ['expiresAt Infinity', valid({ expiresAt: Infinity })],
  ['createdAt missing', { data: {}, expiresAt: Date.now() + HOUR, version: 1 }],
  ['absoluteExpiresAt as a string', valid({ absoluteExpiresAt: 'never' as never })],
  ['another id inside the record', valid({ id: generateId() })],
  ['data nested 500 deep', valid({ data: { x: deep(500) } as never })],
  ['an array instead of a record', [valid()]],
]

for (const [title, raw] of corrupt) {
  test(`storage answers ${title}: no session, SESSION_INVALID_RECORD reported, fresh id, nothing overwritten`, async (t) => {
    const { storage, id, session, res, errors } = await resolveForged(raw)
    t.true(session.isNew)
    t.is(session.get('user'), undefined)
    t.true(
      errors.some((error) => error instanceof SessionError && error.code === 'SESSION_INVALID_RECORD'),
      'the corrupt record is reported',
    )
    await session.set('user', 'mallory')
    t.not(session.id, id, 'the new session does not take the id of the bad record')
    t.is(res.cookies().get('sid')?.value, session.id)
    t.false(
      storage.applied.some((op) => op.id === id),
      "nothing was written under the bad record's id",
    )
  })
}

test('storage answers a record whose id differs only by case: refused', async (t) => {
  const storage = new FaultStorage(new MemoryStorage())
  const id = generateId()
    .replace(/^[a-z]/, 'A')
    .replace(/^[^A-Z]/, 'B')
  const twin = id[0]!.toLowerCase() + id.slice(1)
  storage.forge(id, valid({ id: twin }))
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })] })
  const errors: Error[] = []
  manager.on('error', (error) => errors.push(error))
  const session = await manager.load(fakeRequest({ cookie: `sid=${id}` }), new FakeResponse())
  t.true(session.isNew)
  t.is(errors.length, 1)
})

const absent: ReadonlyArray<[string, unknown]> = [
  ['null', null],
  ['undefined', undefined],
  ['an expired record (the storage broke its contract)', valid({ expiresAt: Date.now() - 1 })],
  ['a record expiring right now', valid({ expiresAt: Date.now() })],
  ['a record past its absolute deadline', valid({ absoluteExpiresAt: Date.now() - 1 })],
  ['a record expired long ago', valid({ createdAt: 0, expiresAt: 1 })],
]

for (const [title, raw] of absent) {
  test(`storage answers ${title}: no session, fresh id, nothing overwritten`, async (t) => {
    const storage = new FaultStorage(new MemoryStorage())
    const id = generateId()
    if (raw !== undefined) storage.forge(id, raw)
    const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })] })
    const res = new FakeResponse()
    const session = await manager.load(fakeRequest({ cookie: `sid=${id}` }), res)
    t.true(session.isNew)
    await session.set('user', 'mallory')
    t.not(session.id, id)
    t.false(storage.applied.some((op) => op.id === id))
  })
}

test('a storage that throws SESSION_INVALID_RECORD itself: no session, reported, not a 503', async (t) => {
  const inner = new MemoryStorage()
  const storage = Object.assign(Object.create(inner) as MemoryStorage, {
    name: 'corrupting',
    get: () => Promise.reject(new SessionError('SESSION_INVALID_RECORD', 'row 7 is not JSON')),
  })
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })] })
  const errors: Error[] = []
  manager.on('error', (error) => errors.push(error))
  const session = await manager.load(fakeRequest({ cookie: `sid=${generateId()}` }), new FakeResponse())
  t.true(session.isNew)
  t.is((errors[0] as SessionError | undefined)?.code, 'SESSION_INVALID_RECORD')
})

const failures: ReadonlyArray<[string, () => Promise<never>]> = [
  ['rejects with an Error', () => Promise.reject(new Error('ECONNRESET'))],
  ['rejects with a string', () => Promise.reject('socket hang up')],
  ['rejects with undefined', () => Promise.reject(undefined)],
  [
    'throws synchronously',
    () => {
      throw new Error('sync boom')
    },
  ],
]

for (const [title, get] of failures) {
  test(`a storage whose get ${title}: SESSION_STORAGE_UNAVAILABLE (503), never a fresh session`, async (t) => {
    const inner = new MemoryStorage()
    const storage = Object.assign(Object.create(inner) as MemoryStorage, { name: 'failing', get })
    const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })] })
    const error = await t.throwsAsync(manager.load(fakeRequest({ cookie: `sid=${generateId()}` }), new FakeResponse()), { instanceOf: SessionError })
    t.is(error?.code, 'SESSION_STORAGE_UNAVAILABLE')
    t.is(error?.status, 503)
  })
}

test('a record with a JSON "__proto__" key in its data loads as an ordinary key', async (t) => {
  const raw = valid({ data: JSON.parse('{"__proto__":{"admin":true},"user":"ada"}') as never })
  const { session, errors } = await resolveForged(raw)
  t.false(session.isNew)
  t.deepEqual(session.get('__proto__'), { admin: true })
  t.is((session.getAll() as Record<string, unknown>)['admin'], undefined)
  t.is(errors.length, 0)
})

test('a record returned by the storage cannot be changed through the session', async (t) => {
  const raw = valid({ data: { list: [1, 2] } })
  const { session } = await resolveForged(raw)
  t.throws(() => (session.get('list') as number[]).push(3))
})
