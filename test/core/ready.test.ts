import test from 'ava'
import { MemoryBus, MemoryBusNetwork } from '../../buses/memory.js'
import { RedisBus } from '../../buses/redis.js'
import { CookieIdentity } from '../../identities/cookie.js'
import { isSessionError, SessionError } from '../../src/errors.js'
import { SessionManager } from '../../src/session-manager.js'
import { DynamoDBStorage } from '../../storages/dynamodb.js'
import { MemoryStorage } from '../../storages/memory.js'
import { MySQLStorage } from '../../storages/mysql.js'
import { startDynalite, uniqueTableName } from '../helpers/dynalite.js'
import { FakeResponse, fakeRequest, seedSession } from '../helpers/fake-http.js'
import { adminPool, closeAdmin, dropTable, uniqueTable } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'

const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))
test.after.always(closeAdmin)

/** A memory storage whose open() waits for `release()` and then fails with `failure`, if set. */
class GatedStorage extends MemoryStorage {
  failure: Error | undefined
  opened = 0
  #release!: () => void
  readonly #gate = new Promise<void>((resolve) => (this.#release = resolve))

  release(): void {
    this.#release()
  }

  protected override async _check(): Promise<void> {
    this.opened++
    await this.#gate
    if (this.failure !== undefined) throw this.failure
  }
}

function managerOn(storage: MemoryStorage | MySQLStorage | DynamoDBStorage, options: ConstructorParameters<typeof SessionManager>[0] = {}): SessionManager {
  return new SessionManager({ storage, identities: [new CookieIdentity()], ...options })
}

/** The messages of `err` and its causes, joined. */
function chain(err: unknown): string {
  const messages: string[] = []
  for (let cause: unknown = err; cause instanceof Error; cause = cause.cause) messages.push(cause.message || String((cause as { code?: unknown }).code))
  return messages.join(' | ')
}

test('ready() on a MySQL port that refuses: SESSION_STORAGE_UNAVAILABLE saying what failed, the mysql2 error on its cause', async (t) => {
  const manager = managerOn(new MySQLStorage({ uri: 'mysql://root@127.0.0.1:1/test' }))
  t.teardown(() => manager.close())
  const error = await t.throwsAsync(manager.ready(), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_STORAGE_UNAVAILABLE')
  t.is(error?.status, 503)
  t.regex(error.message, /^the mysql storage could not be opened: connect ECONNREFUSED 127\.0\.0\.1:1$/)
  t.regex(chain(error?.cause), /ECONNREFUSED/)
})

mysqlTest('ready() checks the MySQL table: a missing one (createTable: false) is named, and ready() succeeds once it exists', async (t) => {
  const table = uniqueTable()
  t.teardown(() => dropTable(table))
  const manager = managerOn(new MySQLStorage({ uri: MYSQL_URL, table, createTable: false }))
  t.teardown(() => manager.close())
  const error = await t.throwsAsync(manager.ready())
  t.true(isSessionError(error, 'SESSION_STORAGE_UNAVAILABLE'))
  t.regex(error.message, new RegExp(`^the mysql storage could not be opened: Table '[^']*${table}' doesn't exist`))

  // The table made by an operator (as createTable would): a failed ready() can be retried.
  const maker = new MySQLStorage({ uri: MYSQL_URL, table })
  await maker.open()
  await maker.close()
  await t.notThrowsAsync(manager.ready())
})

mysqlTest('ready() creates the MySQL table when the storage creates it, and is memoized', async (t) => {
  const table = uniqueTable()
  t.teardown(() => dropTable(table))
  const manager = managerOn(new MySQLStorage({ uri: MYSQL_URL, table }))
  t.teardown(() => manager.close())
  const ready = manager.ready()
  t.is(manager.ready(), ready, 'the same promise while it runs')
  await ready
  t.is(manager.ready(), ready, 'and once it resolved')
  const [rows] = await adminPool().query(`SELECT COUNT(*) AS n FROM \`${table}\``)
  t.is(Number((rows as Array<{ n: number }>)[0]!.n), 0, 'the table exists')
})

test('ready() on DynamoDB: a missing table is named (createTable: false); with createTable it is made', async (t) => {
  const dynalite = await startDynalite()
  t.teardown(() => dynalite.close())
  const table = uniqueTableName()
  const missing = managerOn(new DynamoDBStorage({ clientConfig: dynalite.clientConfig, table }))
  t.teardown(() => missing.close())
  const error = await t.throwsAsync(missing.ready())
  t.true(isSessionError(error, 'SESSION_STORAGE_UNAVAILABLE'))
  t.is(error.message, `the dynamodb storage could not be opened: table ${table} does not exist (create it, or give the storage createTable: true)`)

  const creating = managerOn(new DynamoDBStorage({ clientConfig: dynalite.clientConfig, table, createTable: true }))
  t.teardown(() => creating.close())
  await t.notThrowsAsync(creating.ready())
  await t.notThrowsAsync(missing.ready(), 'retried once the table exists')
})

test('requests that arrive while ready() runs wait for it, then are served', async (t) => {
  const storage = new GatedStorage()
  const id = await seedSession(storage, { user: 'ada' })
  const manager = managerOn(storage)
  t.teardown(() => manager.close())
  const ready = manager.ready()
  const loading = manager.load(fakeRequest({ cookie: `sid=${id}` }), new FakeResponse())
  let loaded = false
  void loading.then(() => (loaded = true))
  await new Promise((resolve) => setImmediate(resolve))
  t.false(loaded, 'the request waits for the storage to open')
  storage.release()
  await ready
  t.is((await loading).get('user'), 'ada')
  t.is(storage.opened, 1)
})

test('a failed ready(): waiting requests get a 503, and ready() opens again when called again', async (t) => {
  const storage = new GatedStorage()
  storage.failure = new Error('disk not mounted')
  const manager = managerOn(storage)
  t.teardown(() => manager.close())
  const ready = manager.ready()
  const loading = manager.load(fakeRequest(), new FakeResponse())
  storage.release()
  const error = await t.throwsAsync(ready)
  t.is(error?.message, 'the memory storage could not be opened: disk not mounted')
  const refused = await t.throwsAsync(loading)
  t.true(isSessionError(refused, 'SESSION_STORAGE_UNAVAILABLE'))
  t.is(refused?.message, 'the session storage is unavailable (the storage could not be opened)', 'nothing of the storage for a client')

  storage.failure = undefined
  const again = manager.ready()
  t.not(again, ready)
  await t.notThrowsAsync(again)
  t.is(storage.opened, 2)
  await t.notThrowsAsync(manager.load(fakeRequest(), new FakeResponse()), 'requests are served after a successful retry')
})

test('ready() opens the invalidation bus: a connected one resolves, one that cannot connect is named within storageTimeout', async (t) => {
  const network = new MemoryBusNetwork()
  const up = managerOn(new MemoryStorage(), { bus: new MemoryBus({ network }) })
  t.teardown(() => up.close())
  await t.notThrowsAsync(up.ready())

  const bus = new RedisBus({ url: 'redis://127.0.0.1:1', connectTimeout: 100, maxReconnectDelay: 100 })
  const down = managerOn(new MemoryStorage(), { bus, storageTimeout: 0.3 })
  t.teardown(async () => {
    await down.close()
    await bus.close()
  })
  const error = await t.throwsAsync(down.ready())
  t.true(isSessionError(error, 'SESSION_STORAGE_UNAVAILABLE'))
  t.is(error?.message, 'the invalidation bus did not connect within 300 ms (storageTimeout)')
})

test('ready() of a closed manager rejects with SESSION_CLOSED', async (t) => {
  const manager = managerOn(new MemoryStorage())
  await manager.close()
  t.true(isSessionError(await t.throwsAsync(manager.ready()), 'SESSION_CLOSED'))
})
