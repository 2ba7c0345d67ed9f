import test, { type ExecutionContext } from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { isSessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import type { StorageCapabilities } from '../../src/kit/index.js'
import type { SessionRecordInput } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { DYNAMODB_MAX_DATA_BYTES, DynamoDBStorage } from '../../storages/dynamodb.js'
import { MYSQL_MAX_DEPTH, MySQLStorage } from '../../storages/mysql.js'
import { startApp } from '../helpers/app-server.js'
import { deleteTable, startDynalite, uniqueTableName } from '../helpers/dynalite.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'
import { nested } from '../helpers/limits-contract.js'
import { TEST_KEY } from '../helpers/manager.js'
import { dropTable, closeAdmin, uniqueTable } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'

// Each storage declares what one record can hold (capabilities.limits), and the manager refuses
// a value beyond it in set(). These tests show, against the real backends, that the declared
// limits are the backends' own: one step past them the backend fails the write, so without the
// declaration a set() would be taken into the cache and then fail as a storage error (a 503
// after every retry) instead of a bad value.

const HOUR = 3_600_000
const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))
test.after.always(closeAdmin)

function record(data: SessionRecordInput['data']): SessionRecordInput {
  const now = Date.now()
  return { data, createdAt: now, expiresAt: now + HOUR }
}

async function storageFails(t: ExecutionContext, write: Promise<unknown>, what: string): Promise<void> {
  const error = await t.throwsAsync(write)
  t.true(isSessionError(error, 'SESSION_STORAGE_ERROR'), `${what}: the backend itself fails it (${String(error)})`)
}

mysqlTest('MariaDB fails what MySQLStorage declares it cannot hold: a value one level past maxDepth, a lone surrogate in a key or a value', async (t) => {
  const storage = new MySQLStorage({ uri: MYSQL_URL, table: uniqueTable() })
  t.teardown(async () => {
    await storage.close()
    await dropTable(storage.table)
  })
  t.is(storage.capabilities.limits?.maxDepth, MYSQL_MAX_DEPTH)
  const id = generateId()
  await storage.set(id, record({ deep: nested(MYSQL_MAX_DEPTH) }))
  t.deepEqual((await storage.get(id))?.data['deep'], nested(MYSQL_MAX_DEPTH), 'the declared depth is held')
  await storageFails(t, storage.set(generateId(), record({ deep: nested(MYSQL_MAX_DEPTH + 1) })), 'set one level deeper')
  await storageFails(t, storage.update(id, 'deep', nested(MYSQL_MAX_DEPTH + 1), Date.now() + HOUR), 'update one level deeper')
  await storageFails(t, storage.update(id, 'key\ud800', 1, Date.now() + HOUR), 'a key with a lone surrogate')
  await storageFails(t, storage.update(id, 'text', 'x\udc00', Date.now() + HOUR), 'a string with a lone surrogate')
  t.deepEqual((await storage.get(id))?.data, { deep: nested(MYSQL_MAX_DEPTH) }, 'nothing of the failed writes is stored')
})

mysqlTest('over HTTP on MariaDB: a value past the storage limits is a 500 SESSION_INVALID_VALUE at once, not a 503 after every retry', async (t) => {
  const storage = new MySQLStorage({ uri: MYSQL_URL, table: uniqueTable() })
  t.teardown(() => dropTable(storage.table))
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ keys: [TEST_KEY] })] })
  const errors: unknown[] = []
  manager.on('error', (error) => errors.push(error))
  const app = await startApp(t, manager, {
    '/save': (session, query) => session.set('prefs', nested(Number(query.get('depth')))).then(() => ({ saved: true })),
    '/read': (session) => session.getAll(),
  })
  const browser = app.client()
  t.is((await browser.get(`/save?depth=${MYSQL_MAX_DEPTH}`)).status, 200)
  const refused = await browser.get(`/save?depth=${MYSQL_MAX_DEPTH + 1}`)
  t.deepEqual([refused.status, refused.body], [500, { error: 'SESSION_INVALID_VALUE' }])
  t.deepEqual((await browser.get('/read')).body, { prefs: nested(MYSQL_MAX_DEPTH) }, 'the session kept what was taken, not the refused value')
  const stats = manager.stats()
  t.is(stats.failures, 0, 'no write reached MariaDB to fail there')
  t.is(stats.retries, 0)
  t.deepEqual(errors, [])
})

mysqlTest('on MariaDB a lone surrogate in a key or a value is refused by set(), before the cache or the table changes', async (t) => {
  const storage = new MySQLStorage({ uri: MYSQL_URL, table: uniqueTable() })
  t.teardown(() => dropTable(storage.table))
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ keys: [TEST_KEY] })] })
  const app = await startApp(t, manager, {
    '/start': (session) => session.set('user', 'ada').then(() => ({})),
    '/lone-key': (session) => session.set('name\ud800', 1).then(() => ({})),
    '/lone-value': (session) => session.set('note', { list: ['ok', 'x\udfff'] }).then(() => ({})),
    '/read': (session) => session.getAll(),
  })
  const browser = app.client()
  await browser.get('/start')
  t.deepEqual((await browser.get('/lone-key')).body, { error: 'SESSION_INVALID_KEY' })
  t.deepEqual((await browser.get('/lone-value')).body, { error: 'SESSION_INVALID_VALUE' })
  t.deepEqual((await browser.get('/read')).body, { user: 'ada' })
  t.is(manager.stats().failures, 0)
})

test('DynamoDB (dynalite) fails an item past 400 KB; DynamoDBStorage declares the data it holds, and a manager refuses a larger maxSessionBytes at construction', async (t) => {
  const dynamo = await startDynalite()
  const storage = new DynamoDBStorage({ clientConfig: dynamo.clientConfig, table: uniqueTableName(), createTable: true })
  t.teardown(async () => {
    await storage.close()
    await deleteTable(dynamo.admin, storage.table)
    await dynamo.close()
  })
  t.is(storage.capabilities.limits?.maxDataBytes, DYNAMODB_MAX_DATA_BYTES)
  const fits = { big: 'x'.repeat(DYNAMODB_MAX_DATA_BYTES - '{"big":""}'.length) }
  const id = generateId()
  await storage.set(id, record(fits))
  t.is(((await storage.get(id))?.data['big'] as string).length, fits.big.length, 'the declared size is held')
  await storageFails(t, storage.set(generateId(), record({ big: 'x'.repeat(410 * 1024) })), 'an item past 400 KB')

  const error = t.throws(() => new SessionManager({ storage, maxSessionBytes: 1_000_000 }), { instanceOf: TypeError })
  t.regex(error?.message ?? '', /"maxSessionBytes" \(1000000\) is more than the "dynamodb" storage holds in one record \(405504 bytes of data\)/)
  const manager = new SessionManager({ storage, maxSessionBytes: DYNAMODB_MAX_DATA_BYTES, identities: [new CookieIdentity({ keys: [TEST_KEY] })] })
  const session = await manager.load(fakeRequest(), new FakeResponse())
  await session.set('big', 'y'.repeat(DYNAMODB_MAX_DATA_BYTES - '{"big":""}'.length))
  t.is(((await storage.get(session.id))?.data['big'] as string).length, DYNAMODB_MAX_DATA_BYTES - 10, 'a session of maxSessionBytes is stored')
  await t.throwsAsync(session.set('more', 1), { code: 'SESSION_TOO_LARGE' }, 'one byte more is refused before the storage sees it')
})

test("setPersistentStorage checks the new storage's limits against maxSessionBytes", (t) => {
  class Limited extends MemoryStorage {
    override readonly capabilities: StorageCapabilities = { ...new MemoryStorage().capabilities, limits: { maxDataBytes: 1_000 } }
  }
  const manager = new SessionManager({ storage: new MemoryStorage(), maxSessionBytes: 4_096, identities: [new CookieIdentity({ keys: [TEST_KEY] })] })
  t.teardown(() => manager.close())
  t.throws(() => manager.setPersistentStorage(new Limited()), { instanceOf: TypeError, message: /"memory" storage holds in one record \(1000 bytes/ })
  t.throws(() => new SessionManager({ storage: new Limited(), maxSessionBytes: 4_096 }), { instanceOf: TypeError })
  t.notThrows(() => manager.setPersistentStorage(new MemoryStorage()))
})
