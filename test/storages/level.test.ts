import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionError, isSessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import type { RequestWithSession } from '../../src/middleware/node.js'
import { SessionManager } from '../../src/session-manager.js'
import type { SessionRecordInput, Storage } from '../../src/types.js'
import { LevelStorage } from '../../storages/level.js'
import { storageContract } from '../helpers/storage-contract.js'

const HOUR = 3_600_000
const KEYS = ['a-signing-key-of-at-least-32-characters!!']

const folders = new WeakMap<Storage, string>()

function tempFolder(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'csm-level-'))
}

storageContract('level', {
  async open() {
    const folder = await tempFolder()
    const storage = new LevelStorage({ location: join(folder, 'db'), cleanupInterval: 0 })
    folders.set(storage, folder)
    // Opened before the suite's clock starts: its expiry tests give a record a few hundred ms.
    await storage.open()
    return storage
  },
  async openWithClock(now) {
    const folder = await tempFolder()
    const storage = new LevelStorage({ location: join(folder, 'db'), cleanupInterval: 0, now })
    folders.set(storage, folder)
    await storage.open()
    return storage
  },
  async dispose(storage) {
    const folder = folders.get(storage)
    if (folder !== undefined) await rm(folder, { recursive: true, force: true })
  },
})

/** A fresh classic-level database in its own folder; removed (and closed) when the test ends. */
async function freshDb(t: import('ava').ExecutionContext): Promise<ClassicLevel> {
  const folder = await tempFolder()
  const db = new ClassicLevel(join(folder, 'db'))
  await db.open()
  t.teardown(async () => {
    await db.close()
    await rm(folder, { recursive: true, force: true })
  })
  return db
}

/** Counts the `db.batch` calls the storage makes, by wrapping the real database's method. */
function countBatches(db: ClassicLevel): { readonly calls: number } {
  const counter = { calls: 0 }
  const original = db.batch.bind(db) as (...args: unknown[]) => unknown
  ;(db as unknown as { batch: (...args: unknown[]) => unknown }).batch = (...args: unknown[]) => {
    counter.calls++
    return original(...args)
  }
  return counter
}

function record(data: SessionRecordInput['data'], expiresAt: number, createdAt = expiresAt - HOUR): SessionRecordInput {
  return { data, createdAt, expiresAt }
}

async function rawKeys(db: ClassicLevel): Promise<string[]> {
  return db.keys().all()
}

// The tests below run serially (ava runs them before the contract suite's concurrent tests):
// every test opens a LevelDB, and dozens opening at once on a small machine starve the
// contract's expiry test, which gives a record only a few hundred milliseconds.

test.serial('level: options name location and db', (t) => {
  t.throws(() => new LevelStorage({}), { instanceOf: TypeError, message: /"location".*"db"/ })
  t.throws(() => new LevelStorage(undefined as never), { instanceOf: TypeError, message: /location.*db/ })
  t.throws(() => new LevelStorage({ location: '' }), { instanceOf: TypeError, message: /"location"/ })
  t.throws(() => new LevelStorage({ db: {} as never }), { instanceOf: TypeError, message: /"db"/ })
  t.throws(() => new LevelStorage({ location: 'x', db: {} as never }), { instanceOf: TypeError, message: /not both/ })
})

test.serial('level: other options are checked', async (t) => {
  const db = await freshDb(t)
  t.throws(() => new LevelStorage({ db, cleanupBatchSize: 0 }), { instanceOf: TypeError, message: /"cleanupBatchSize"/ })
  t.throws(() => new LevelStorage({ db, cleanupInterval: -1 }), { instanceOf: TypeError, message: /"cleanupInterval"/ })
  t.throws(() => new LevelStorage({ db, now: 5 as never }), { instanceOf: TypeError, message: /"now"/ })
})

test.serial('level: sessions survive a restart: a second manager on the same location serves the same cookie', async (t) => {
  const folder = await tempFolder()
  t.teardown(() => rm(folder, { recursive: true, force: true }))
  const location = join(folder, 'sessions')

  const first = await serve(new SessionManager({ storage: new LevelStorage({ location }), identities: [new CookieIdentity({ keys: KEYS })] }))
  const written = await fetch(`${first.url}/set?user=ada&role=admin`)
  t.is(written.status, 200)
  const cookie = written.headers
    .getSetCookie()
    .map((line) => line.split(';')[0])
    .join('; ')
  t.regex(cookie, /sid=.*sid\.sig=/)
  await first.stop()

  const second = await serve(new SessionManager({ storage: new LevelStorage({ location }), identities: [new CookieIdentity({ keys: KEYS })] }))
  t.teardown(second.stop)
  const read = await fetch(`${second.url}/get`, { headers: { cookie } })
  t.deepEqual(await read.json(), { isNew: false, data: { user: 'ada', role: 'admin' } })
})

/** A node:http server whose `/set?k=v` writes keys and `/get` returns the session; `stop` closes it and the manager. */
async function serve(manager: SessionManager): Promise<{ url: string; stop: () => Promise<void> }> {
  const sessions = manager.middleware()
  const server: Server = createServer((req, res) =>
    sessions(req, res, async (err) => {
      if (err !== undefined) {
        res.statusCode = (err as { status?: number }).status ?? 500
        res.end()
        return
      }
      const session = (req as RequestWithSession).session!
      const url = new URL(req.url ?? '/', 'http://localhost')
      if (url.pathname === '/set') for (const [key, value] of url.searchParams) await session.set(key, value)
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ isNew: session.isNew, data: session.getAll() }))
    }),
  )
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  let stopped: Promise<void> | undefined
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      (stopped ??= (async () => {
        server.closeAllConnections()
        server.close()
        await once(server, 'close')
        await manager.close()
      })()),
  }
}

test.serial('level: a session of many keys lives and dies as one: reading keeps every key alive', async (t) => {
  const db = await freshDb(t)
  let now = 1_000_000
  const storage = new LevelStorage({ db, cleanupInterval: 0, now: () => now })
  t.teardown(() => storage.close())
  const id = generateId()
  const data = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`key${i}`, { i }]))
  await storage.set(id, record(data, now + 1000))

  // The manager touches on reads; the touch moves the one deadline every key shares.
  now += 900
  t.true(await storage.touch(id, now + 1000))
  now += 600 // past the first deadline
  t.deepEqual((await storage.get(id))!.data, data)
  t.true(await storage.update(id, 'key0', 'changed', now + 1000))
  now += 900
  const got = await storage.get(id)
  t.is(Object.keys(got!.data).length, 20)
  t.is(got!.data['key19'] !== undefined, true)

  // Past the deadline: nothing is returned and nothing can be written, though no cleanup ran yet.
  now += 100
  t.is(await storage.get(id), undefined)
  t.false(await storage.update(id, 'key1', 'late', now + 1000))
  t.false(await storage.touch(id, now + 1000))
  t.is(await storage.length(), 0)
  t.true(
    (await rawKeys(db)).some((key) => key.includes(id)),
    'the expired session is still on disk before cleanup',
  )

  t.is(await storage.cleanup(), 1)
  t.false(
    (await rawKeys(db)).some((key) => key.includes(id)),
    'cleanup removed the metadata, every data key and the index entry',
  )
})

test.serial('level: the absolute deadline ends a session even when it was touched', async (t) => {
  const db = await freshDb(t)
  let now = 5_000_000
  const storage = new LevelStorage({ db, cleanupInterval: 0, now: () => now })
  t.teardown(() => storage.close())
  const id = generateId()
  await storage.set(id, { data: { a: 1, b: 2 }, createdAt: now, expiresAt: now + 1000, absoluteExpiresAt: now + 1500 })
  now += 900
  t.true(await storage.touch(id, now + 1000))
  now += 600
  t.is(await storage.get(id), undefined)
  t.is(await storage.cleanup(), 1)
  t.deepEqual(await rawKeys(db), [])
})

test.serial('level: cleanup walks the expiry index in bounded batches, one db.batch each', async (t) => {
  const db = await freshDb(t)
  const storage = new LevelStorage({ db, cleanupInterval: 0, cleanupBatchSize: 10 })
  t.teardown(() => storage.close())
  const now = Date.now()
  const expired = Array.from({ length: 35 }, () => generateId())
  const live = Array.from({ length: 5 }, () => generateId())
  await storage.batch([
    ...expired.map((id, i) => ({ type: 'set' as const, id, record: record({ i, other: 'x' }, now - 1000 - i) })),
    ...live.map((id) => ({ type: 'set' as const, id, record: record({ live: true }, now + HOUR) })),
  ])
  const batches = countBatches(db)
  t.is(await storage.cleanup(now), 35)
  t.is(batches.calls, 4) // 10 + 10 + 10 + 5
  t.is(await storage.length(), 5)
  for (const id of live) t.truthy(await storage.get(id))
  const left = await rawKeys(db)
  for (const id of expired) t.false(left.some((key) => key.includes(id)))
  t.is(await storage.cleanup(now), 0)
})

test.serial('level: cleanup never deletes a session whose deadline moved after the index was read', async (t) => {
  const db = await freshDb(t)
  const now = 2_000_000
  const storage = new LevelStorage({ db, cleanupInterval: 0, now: () => now })
  t.teardown(() => storage.close())
  const id = generateId()
  await storage.set(id, record({ a: 1 }, now + 10))
  // A cleanup for a later instant starts while a write moves the deadline: whichever index it
  // reads, it re-checks the session under the session's lock and keeps it.
  const updated = storage.update(id, 'b', 2, now + HOUR)
  const cleaned = storage.cleanup(now + 20)
  t.true(await updated)
  t.is(await cleaned, 0)
  t.deepEqual((await storage.get(id))!.data, { a: 1, b: 2 })
  t.is(await storage.cleanup(now + 20), 0)
  t.deepEqual((await db.sublevel('expiry').keys().all()).length, 1, 'one index entry: the current one')
})

test.serial('level: automatic cleanup runs on its interval', async (t) => {
  const db = await freshDb(t)
  const storage = new LevelStorage({ db, cleanupInterval: 0.02 })
  t.teardown(() => storage.close())
  await storage.set(generateId(), record({ a: 1 }, Date.now() - 1000))
  await storage.set(generateId(), record({ b: 1 }, Date.now() + HOUR))
  // Up to 10 s: a cleanup every 20 ms is due long before, but a busy machine can hold timers back.
  for (let i = 0; i < 1000 && (await rawKeys(db)).length > 3; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  // What remains is the live session: its metadata, its one data key and its index entry.
  t.is((await rawKeys(db)).length, 3)
})

test.serial('level: a second process opening the same location gets a clear error, not a hang', async (t) => {
  const folder = await tempFolder()
  const location = join(folder, 'db')
  const holder = spawn(process.execPath, ['-e', HOLD_DATABASE, location], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(async () => {
    if (holder.exitCode === null) {
      holder.stdin.end()
      await once(holder, 'exit')
    }
    await rm(folder, { recursive: true, force: true })
  })
  const [ready] = (await once(holder.stdout, 'data')) as [Buffer]
  t.is(ready.toString().trim(), 'open')

  const storage = new LevelStorage({ location })
  const lockError = { message: /level storage cannot open ".*db".*another process.*holds its lock/ }
  const error = await t.throwsAsync(storage.open(), lockError)
  t.is((error?.cause as { cause?: { code?: string } } | undefined)?.cause?.code, 'LEVEL_LOCKED')
  await t.throwsAsync(storage.get(generateId()), lockError)
  await t.throwsAsync(storage.set(generateId(), record({}, Date.now() + HOUR)), lockError)

  // Through a manager: the request gets a 503 error, not "no session" and not a hang.
  const manager = new SessionManager({ storage, identities: [new CookieIdentity()] })
  const req = { headers: { cookie: `sid=${generateId()}` }, url: '/', socket: {} }
  const res = { headersSent: false, getHeader: () => undefined, setHeader: () => undefined }
  const failure = await t.throwsAsync(manager.load(req, res), { instanceOf: SessionError })
  t.is(failure?.code, 'SESSION_STORAGE_UNAVAILABLE')
  t.is(failure?.status, 503)
  await manager.close()

  // Once the other process is gone, the location opens.
  holder.stdin.end()
  await once(holder, 'exit')
  const reopened = new LevelStorage({ location })
  await t.notThrowsAsync(reopened.open())
  await reopened.close()
})

/** Opens the database at argv[1], prints "open", and holds it until stdin closes. */
const HOLD_DATABASE = `
const { ClassicLevel } = require('classic-level')
const db = new ClassicLevel(process.argv[1])
db.open().then(() => {
  process.stdout.write('open\\n')
  process.stdin.resume()
  process.stdin.on('end', () => db.close().then(() => process.exit(0)))
})
`

test.serial('level: a second storage on the same location in this process gets the same clear error', async (t) => {
  const folder = await tempFolder()
  t.teardown(() => rm(folder, { recursive: true, force: true }))
  const location = join(folder, 'db')
  const first = new LevelStorage({ location })
  await first.open()
  const second = new LevelStorage({ location })
  await t.throwsAsync(second.open(), { message: /another process.*holds its lock/ })
  await second.close()
  await first.close()
})

test.serial('level: { db } reuses an open database through a sublevel and never closes it', async (t) => {
  const root = new ClassicLevel<string, unknown>(join(await tempFolder(), 'db'), { valueEncoding: 'json' })
  t.teardown(async () => {
    await root.close()
    await rm(join(root.location, '..'), { recursive: true, force: true })
  })
  await root.put('app-setting', { theme: 'dark' })
  const auth = root.sublevel('auth')
  const storage = new LevelStorage({ db: auth, cleanupInterval: 0 })
  const id = generateId()
  await storage.set(id, record({ user: 'ada' }, Date.now() + HOUR))
  t.deepEqual((await storage.get(id))!.data, { user: 'ada' })
  const keys = await root.keys().all()
  t.true(
    keys.filter((key) => key !== 'app-setting').every((key) => key.startsWith('!auth!!')),
    'every session entry is inside the sublevel',
  )

  await storage.clear()
  t.deepEqual(await root.get('app-setting'), { theme: 'dark' }, 'clear leaves the rest of the database alone')
  await storage.close()
  await storage.close()
  t.is(root.status, 'open')
  await t.throwsAsync(storage.get(id), { message: /level storage is closed/ })
})

test.serial('level: writes from many sessions arriving together go out as one db.batch', async (t) => {
  const db = await freshDb(t)
  const storage = new LevelStorage({ db, cleanupInterval: 0 })
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ keys: KEYS })] })
  t.teardown(() => manager.close())
  const batches = countBatches(db)
  const sessions = await Promise.all(
    Array.from({ length: 50 }, () =>
      manager.load({ headers: {}, url: '/', socket: {} }, { headersSent: false, getHeader: () => undefined, setHeader: () => undefined }),
    ),
  )
  await Promise.all(sessions.map((session, i) => session.set('n', i)))
  t.is(batches.calls, 1)
  t.is(manager.stats().storageCalls, 1)
  for (const [i, session] of sessions.entries()) t.deepEqual((await storage.get(session.id))!.data, { n: i })
})

test.serial('level: an unusable record is SESSION_INVALID_RECORD, which the manager reports and treats as absent', async (t) => {
  const db = await freshDb(t)
  const storage = new LevelStorage({ db, cleanupInterval: 0 })
  const manager = new SessionManager({ storage, identities: [new CookieIdentity()] })
  t.teardown(() => manager.close())
  const raw = db.sublevel('sessions')
  const badMeta = generateId()
  const noMeta = generateId()
  const badValue = generateId()
  await raw.put(`${badMeta}\x00`, 'not json')
  await raw.put(`${noMeta}\x01"a"`, '1')
  await storage.set(badValue, record({ a: 1 }, Date.now() + HOUR))
  await raw.put(`${badValue}\x01"a"`, '{broken')

  for (const id of [badMeta, noMeta, badValue]) {
    const error = await t.throwsAsync(storage.get(id), { instanceOf: SessionError })
    t.is(error?.code, 'SESSION_INVALID_RECORD')
  }
  const reported: Error[] = []
  manager.on('error', (error) => reported.push(error))
  const session = await manager.load(
    { headers: { cookie: `sid=${badMeta}` }, url: '/', socket: {} },
    { headersSent: false, getHeader: () => undefined, setHeader: () => undefined },
  )
  t.true(session.isNew)
  t.is(reported.length, 1)
  t.is((reported[0] as SessionError).code, 'SESSION_INVALID_RECORD')
})

test.serial('level: a database failure rejects with an error naming the level storage and carrying the cause', async (t) => {
  const db = await freshDb(t)
  const storage = new LevelStorage({ db, cleanupInterval: 0 })
  await storage.open()
  await db.close()
  const error = await t.throwsAsync(storage.get(generateId()), { message: /^the level storage could not read a session$/ })
  t.is((error?.cause as { code?: string }).code, 'LEVEL_DATABASE_NOT_OPEN')
  await t.throwsAsync(storage.update(generateId(), 'a', 1, Date.now() + HOUR), { message: /^the level storage could not write a session$/ })
  await db.open()
  await storage.close()
})

test.serial('level: ids it cannot hold are refused on write and absent on read', async (t) => {
  const db = await freshDb(t)
  const storage = new LevelStorage({ db, cleanupInterval: 0 })
  t.teardown(() => storage.close())
  for (const id of ['', 'with space', 'nul\x00byte', 'é'.repeat(10)]) {
    const refused = await t.throwsAsync(storage.set(id, record({}, Date.now() + HOUR)), { instanceOf: SessionError, message: /printable ASCII/ })
    t.is(refused?.code, 'SESSION_INVALID_OPERATION')
    t.is(await storage.get(id), undefined)
    t.false(await storage.update(id, 'a', 1, Date.now() + HOUR))
  }
  const outcomes = await storage.batch([
    { type: 'set', id: 'bad id', record: record({}, Date.now() + HOUR) },
    { type: 'set', id: generateId(), record: record({ ok: true }, Date.now() + HOUR) },
  ])
  t.true(isSessionError(outcomes[0], 'SESSION_INVALID_OPERATION'))
  t.true(outcomes[1])
})

test.serial('level: a value that is not JSON fails its own operation only', async (t) => {
  const db = await freshDb(t)
  const storage = new LevelStorage({ db, cleanupInterval: 0 })
  t.teardown(() => storage.close())
  const id = generateId()
  const other = generateId()
  await storage.set(id, record({ a: 1 }, Date.now() + HOUR))
  const outcomes = await storage.batch([
    { type: 'update', id, key: 'b', value: 10n as never, expiresAt: Date.now() + HOUR },
    { type: 'update', id, key: 'c', value: 3, expiresAt: Date.now() + HOUR },
    { type: 'set', id: other, record: record({ fine: true }, Date.now() + HOUR) },
  ])
  t.true(isSessionError(outcomes[0], 'SESSION_INVALID_VALUE'))
  t.is(outcomes[1], outcomes[0], 'later operations of the same session are not applied out of order')
  t.true(outcomes[2])
  t.deepEqual((await storage.get(id))!.data, { a: 1 })
  t.deepEqual((await storage.get(other))!.data, { fine: true })
})
