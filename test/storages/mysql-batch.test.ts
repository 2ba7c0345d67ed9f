import test from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import { MySQLStorage } from '../../storages/mysql.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-exchange.js'
import { closeAdmin, dropTable, uniqueTable } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'

// One write the server refuses must fail alone: the batch transaction holds the writes of many
// sessions (many users), and a value MariaDB's JSON cannot hold (a string with a lone UTF-16
// surrogate, which JSON.parse gives from "\ud800" in any request body) must not fail theirs.

const HOUR = 3_600_000
const LONE_SURROGATE = 'x\ud800y'
const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))

test.after.always(closeAdmin)

async function withStorage(body: (storage: MySQLStorage) => Promise<void>): Promise<void> {
  const storage = new MySQLStorage({ uri: MYSQL_URL, table: uniqueTable('batch_isolation') })
  try {
    await body(storage)
  } finally {
    await storage.close()
    await dropTable(storage.table)
  }
}

mysqlTest('mysql: a batch operation the server refuses fails alone; the other operations land with their own outcomes', async (t) => {
  await withStorage(async (storage) => {
    const now = Date.now()
    const [good, bad, other] = [generateId(), generateId(), generateId()]
    await storage.set(good, { data: { n: 0 }, createdAt: now, expiresAt: now + HOUR })
    await storage.set(bad, { data: { n: 0 }, createdAt: now, expiresAt: now + HOUR })
    const outcomes = await storage.batch([
      { type: 'update', id: good, key: 'n', value: 1, expiresAt: now + HOUR },
      { type: 'update', id: bad, key: 'name', value: LONE_SURROGATE, expiresAt: now + HOUR },
      { type: 'update', id: bad, key: 'n', value: 2, expiresAt: now + HOUR },
      { type: 'set', id: other, record: { data: { n: 3 }, createdAt: now, expiresAt: now + HOUR } },
      { type: 'touch', id: generateId(), expiresAt: now + HOUR },
    ])
    t.is(outcomes.length, 5)
    t.is(outcomes[0], true)
    t.true(outcomes[1] instanceof Error, 'the refused write gets its error')
    t.true(outcomes[2] instanceof Error, 'and so does the later write of the same session, not applied out of order')
    t.is(outcomes[3], true)
    t.is(outcomes[4], false, 'a touch of a missing session still answers false')
    t.is((await storage.get(good))?.data['n'], 1)
    t.is((await storage.get(other))?.data['n'], 3)
    t.deepEqual((await storage.get(bad))?.data, { n: 0 }, 'nothing of the failed session was applied')
  })
})

mysqlTest("mysql: through the manager, one user storing an unstorable value does not fail another user's write", async (t) => {
  await withStorage(async (storage) => {
    const manager = new SessionManager({ storage, identities: [new CookieIdentity()], writeRetries: 0 })
    const [alice, mallory] = await Promise.all([manager.load(fakeRequest(), new FakeResponse()), manager.load(fakeRequest(), new FakeResponse())])
    // Written in the same tick, so the write queue sends them in one batch.
    const writes = [alice.set('n', 1), mallory.set('name', LONE_SURROGATE)]
    const settled = await Promise.allSettled(writes)
    t.deepEqual(
      settled.map((outcome) => outcome.status),
      ['fulfilled', 'rejected'],
    )
    t.is((await storage.get(alice.id))?.data['n'], 1)
    await manager.close()
  })
})
