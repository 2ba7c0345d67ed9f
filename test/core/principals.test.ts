import test, { type ExecutionContext, type TestFn } from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SessionManagerOptions } from '../../src/session-manager.js'
import type { Storage } from '../../src/types.js'
import { MemoryBus, MemoryBusNetwork } from '../../buses/memory.js'
import { DynamoDBStorage } from '../../storages/dynamodb.js'
import { LevelStorage } from '../../storages/level.js'
import { MemoryStorage } from '../../storages/memory.js'
import { MySQLStorage } from '../../storages/mysql.js'
import { createSessionTable, deleteTable, startDynalite, uniqueTableName } from '../helpers/dynalite.js'
import { testManager, visit } from '../helpers/manager.js'
import { closeAdmin, dropTable, uniqueTable } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'

// The manager's principal index on every storage that keeps one (memory, LevelDB, MariaDB, and
// DynamoDB through dynalite): each write that changes the
// principal tells the storage in the same operation, sessionsOf lists a principal's live
// sessions, revokeSessionsOf ends them, maxSessionsPerPrincipal keeps the newest.

const DAY = 86_400_000
const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))

const dynamo = await startDynalite()
test.after.always(closeAdmin)
test.after.always(() => dynamo.close())

/** A fresh storage of one kind; what it leaves behind is removed when the test ends (after the manager closed it). */
type Open = (t: ExecutionContext) => Promise<Storage>

const kinds: Array<[string, TestFn, Open]> = [
  ['memory', test, async () => new MemoryStorage()],
  [
    'level',
    test,
    async (t) => {
      const location = await mkdtemp(join(tmpdir(), 'csm-principals-'))
      t.teardown(() => rm(location, { recursive: true, force: true }))
      return new LevelStorage({ location, cleanupInterval: 0 })
    },
  ],
  [
    'mysql',
    mysqlTest,
    async (t) => {
      const table = uniqueTable('sessions_principals')
      t.teardown(() => dropTable(table))
      return new MySQLStorage({ uri: MYSQL_URL, table })
    },
  ],
  [
    'dynamodb',
    test,
    async (t) => {
      const table = uniqueTableName('sessions-principals')
      await createSessionTable(dynamo.admin, table)
      t.teardown(() => deleteTable(dynamo.admin, table))
      return new DynamoDBStorage({ clientConfig: dynamo.clientConfig, table })
    },
  ],
]

async function managerOn(t: ExecutionContext, open: Open, options: SessionManagerOptions = {}) {
  const storage = await open(t)
  const manager = testManager({ storage, principal: 'userId', ...options })
  // Registered after the storage's own teardown, so it runs first: the storage is closed before its files or table go.
  t.teardown(() => manager.close())
  return manager
}

async function idsOf(manager: { sessionsOf(value: string | number): Promise<Array<{ id: string }>> }, value: string | number): Promise<string[]> {
  return (await manager.sessionsOf(value)).map((session) => session.id).sort()
}

for (const [kind, run, open] of kinds) {
  run(`${kind}: the index follows set, remove, clear, renew and destroy; a number is its text`, async (t) => {
    const manager = await managerOn(t, open)
    const first = await visit(manager)
    await first.session.set('cart', ['book']) // no principal yet
    t.deepEqual(await idsOf(manager, 42), [])
    await first.session.set('userId', 42)
    const id = first.session.id
    t.deepEqual(await idsOf(manager, 42), [id])
    t.deepEqual(await idsOf(manager, '42'), [id], 'a number and its decimal text are one principal')
    const [listed] = await manager.sessionsOf(42)
    t.is(typeof listed!.createdAt, 'number')
    t.true(listed!.expiresAt > listed!.createdAt)
    t.false('data' in listed!, 'no data is listed')

    await first.session.set('cart', ['book', 'pen']) // another key leaves the principal
    t.deepEqual(await idsOf(manager, 42), [id])
    await first.session.set('userId', 'ada')
    t.deepEqual(await idsOf(manager, 42), [])
    t.deepEqual(await idsOf(manager, 'ada'), [id])
    await first.session.remove('userId')
    t.deepEqual(await idsOf(manager, 'ada'), [])
    await first.session.set('userId', 7)
    await first.session.clear()
    t.deepEqual(await idsOf(manager, 7), [], 'clear takes the principal away')

    await first.session.set('userId', 7)
    await first.session.renew()
    const renewed = first.session.id
    t.not(renewed, id)
    t.deepEqual(await idsOf(manager, 7), [renewed], 'the new id is indexed, the old one gone')
    await first.session.destroy()
    t.deepEqual(await idsOf(manager, 7), [])
  })

  run(`${kind}: writes in flight coalesce to the last principal`, async (t) => {
    const manager = await managerOn(t, open)
    const { session } = await visit(manager)
    await session.set('userId', 1)
    await Promise.all([session.set('userId', 2), session.set('cart', 'x'), session.set('userId', 3), session.remove('cart')])
    t.deepEqual(await idsOf(manager, 1), [])
    t.deepEqual(await idsOf(manager, 2), [])
    t.deepEqual(await idsOf(manager, 3), [session.id])
    // A new session's first writes fold into its creating set.
    const fresh = await visit(manager)
    await Promise.all([fresh.session.set('userId', 4), fresh.session.set('userId', 5), fresh.session.remove('userId'), fresh.session.set('userId', 6)])
    t.deepEqual(await idsOf(manager, 5), [])
    t.deepEqual(await idsOf(manager, 6), [fresh.session.id])
  })

  run(`${kind}: expired sessions are not listed`, async (t) => {
    const manager = await managerOn(t, open, { maxAge: 3600 })
    manager.clock.now = Date.now() - 2 * 3_600_000 // created two hours ago: expired by the storage's own clock too
    const old = await visit(manager)
    await old.session.set('userId', 42)
    manager.clock.now = Date.now()
    const live = await visit(manager)
    await live.session.set('userId', 42)
    t.deepEqual(await idsOf(manager, 42), [live.session.id])
    manager.clock.now = Date.now() + 2 * 3_600_000 // by the manager's clock, the live one has expired too
    t.deepEqual(await idsOf(manager, 42), [])
  })

  run(`${kind}: a function principal`, async (t) => {
    const manager = await managerOn(t, open, { principal: (data) => (data['user'] as { id?: number } | undefined)?.id })
    const { session } = await visit(manager)
    await session.set('user', { id: 5, name: 'ada' })
    t.deepEqual(await idsOf(manager, 5), [session.id])
    await session.set('user', { id: 6 })
    t.deepEqual(await idsOf(manager, 5), [])
    t.deepEqual(await idsOf(manager, '6'), [session.id])
    await session.set('theme', 'dark') // evaluated on every write: no change, nothing moves
    t.deepEqual(await idsOf(manager, 6), [session.id])
    await session.clear()
    t.deepEqual(await idsOf(manager, 6), [])
  })

  run(`${kind}: revokeSessionsOf destroys every session of the principal but except, cached or not`, async (t) => {
    const manager = await managerOn(t, open)
    const browsers = await Promise.all([visit(manager), visit(manager), visit(manager)])
    for (const browser of browsers) await browser.session.set('userId', 42)
    const other = await visit(manager)
    await other.session.set('userId', 7)
    const [keep, cachedHere, third] = browsers

    const destroyed: string[] = []
    manager.on('destroy', (id) => destroyed.push(id))
    t.is(await manager.revokeSessionsOf(42, { except: keep.session.id }), 2)
    t.deepEqual(destroyed.sort(), [cachedHere.session.id, third.session.id].sort())
    t.deepEqual(await idsOf(manager, 42), [keep.session.id])
    t.deepEqual(await idsOf(manager, 7), [other.session.id], 'another principal is untouched')
    t.is(await manager.storage.get(cachedHere.session.id), undefined, 'deleted in storage')
    t.true(cachedHere.session.isDestroyed, 'a request holding it sees it destroyed')

    const next = await visit(manager, cachedHere.cookie)
    t.true(next.session.isNew, 'its cookie opens nothing')
    t.is(next.session.get('userId'), undefined)
    t.is((await visit(manager, keep.cookie)).session.get('userId'), 42, 'the kept session still opens')
    t.is(await manager.revokeSessionsOf('42'), 1)
    t.is(await manager.revokeSessionsOf(42), 0)
  })

  run(`${kind}: maxSessionsPerPrincipal keeps the newest sessions and the one logging in`, async (t) => {
    const manager = await managerOn(t, open, { maxSessionsPerPrincipal: 2 })
    const start = Date.now()
    manager.clock.now = start - DAY
    const early = await visit(manager) // an anonymous session from yesterday, which logs in last
    await early.session.set('cart', 'x')
    const logins = []
    for (let i = 0; i < 3; i++) {
      manager.clock.now = start + i * 1000
      const browser = await visit(manager)
      await browser.session.set('userId', 42)
      logins.push(browser.session.id)
      t.true((await manager.sessionsOf(42)).length <= 2)
    }
    t.deepEqual(await idsOf(manager, 42), logins.slice(1).sort(), 'the oldest login was revoked')
    await early.session.set('userId', 42)
    t.deepEqual(await idsOf(manager, 42), [logins[2]!, early.session.id].sort(), 'the session written stays, with the newest other')
    t.true((await visit(manager, early.cookie)).session.get('userId') === 42)
    await early.session.renew() // a renew stores the principal again: the renewed-away id does not count
    t.deepEqual(await idsOf(manager, 42), [logins[2]!, early.session.id].sort())
  })
}

mysqlTest('mysql: a session revoked by one manager is refused by another that had it cached', async (t) => {
  const table = uniqueTable('sessions_principals')
  t.teardown(() => dropTable(table))
  const one = testManager({ storage: new MySQLStorage({ uri: MYSQL_URL, table }), principal: 'userId', trustCacheFor: 0.2 })
  const two = testManager({ storage: new MySQLStorage({ uri: MYSQL_URL, table }), principal: 'userId', trustCacheFor: 0.2 })
  t.teardown(async () => {
    await one.close()
    await two.close()
  })
  const login = await visit(one)
  await login.session.set('userId', 42)
  const there = await visit(two, login.cookie)
  t.is(there.session.get('userId'), 42, 'the second manager caches it')
  const mine = await visit(one)
  await mine.session.set('userId', 42)

  t.is(await two.revokeSessionsOf(42, { except: mine.session.id }), 1)
  t.true(there.session.isDestroyed, 'revoked in the manager that asked')
  const clock = Date.now() + 300 // past trustCacheFor
  one.clock.now = clock
  const after = await visit(one, login.cookie)
  t.true(after.session.isNew, 'the manager that had it cached refuses it once trustCacheFor has passed')
  t.is(after.session.get('userId'), undefined)
  t.deepEqual(await idsOf(one, 42), [mine.session.id])
})

mysqlTest('mysql: with a bus, a session revoked by one manager is refused by another at once, whatever trustCacheFor', async (t) => {
  const table = uniqueTable('sessions_principals')
  t.teardown(() => dropTable(table))
  const network = new MemoryBusNetwork()
  const options = { principal: 'userId', trustCacheFor: 3600 }
  const one = testManager({ ...options, storage: new MySQLStorage({ uri: MYSQL_URL, table }), bus: new MemoryBus({ network, origin: 'one' }) })
  const two = testManager({ ...options, storage: new MySQLStorage({ uri: MYSQL_URL, table }), bus: new MemoryBus({ network, origin: 'two' }) })
  t.teardown(async () => {
    await one.close()
    await two.close()
  })
  await Promise.all([one.ready(), two.ready()])
  const phone = await visit(one)
  await phone.session.set('userId', 42)
  t.is((await visit(two, phone.cookie)).session.get('userId'), 42, 'the second manager caches it')
  t.is(await one.revokeSessionsOf(42), 1)
  await new Promise((resolve) => setTimeout(resolve, 50)) // the bus delivers
  const after = await visit(two, phone.cookie)
  t.true(after.session.isNew, 'refused by the other manager before trustCacheFor ran out')
  t.is(two.stats().revokedElsewhere, 1, 'dropped on the bus message, not by a version check')
})
