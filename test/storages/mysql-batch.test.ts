import test from 'ava'
import { createConnection, createPool, type Connection, type Pool, type PoolConnection } from 'mysql2/promise'
import { CookieIdentity } from '../../identities/cookie.js'
import { isSessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import type { StorageOperation } from '../../src/kit/index.js'
import { SessionManager } from '../../src/session-manager.js'
import { MySQLStorage } from '../../storages/mysql.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'
import { adminPool, closeAdmin, dropTable, uniqueTable } from '../helpers/mysql.js'
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

/**
 * A storage on a one-connection pool of its own, so a session variable set on the pool holds for
 * the batch's transaction, and a count of the transactions the storage began.
 */
async function withOneConnection(body: (storage: MySQLStorage, pool: Pool, transactions: () => number) => Promise<void>): Promise<void> {
  const pool = createPool({ uri: MYSQL_URL, connectionLimit: 1 })
  let transactions = 0
  const getConnection = pool.getConnection.bind(pool)
  pool.getConnection = () => {
    transactions++
    return getConnection()
  }
  const storage = new MySQLStorage({ pool, table: uniqueTable('batch_rollback') })
  try {
    await body(storage, pool, () => transactions)
  } finally {
    await storage.close()
    await pool.end()
    await dropTable(storage.table)
  }
}

/**
 * Resolves once a transaction waits for a row lock that `holder`'s transaction holds: only
 * that one, since other tests (of this file and others) wait for locks of their own.
 */
async function lockWaiting(holder: Pick<Connection, 'threadId'>): Promise<void> {
  for (;;) {
    const [rows] = await adminPool().query<Array<{ n: number } & import('mysql2').RowDataPacket>>(
      `SELECT COUNT(*) AS n FROM information_schema.INNODB_LOCK_WAITS w
       JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id WHERE b.trx_mysql_thread_id = ?`,
      [holder.threadId],
    )
    if (Number(rows[0]!.n) > 0) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

mysqlTest('mysql: a batch whose transaction is rolled back (a lock wait timeout) fails every operation in it and applies none', async (t) => {
  await withOneConnection(async (storage, pool, transactions) => {
    const now = Date.now()
    const [locked, fresh] = [generateId(), generateId()]
    await storage.set(locked, { data: { n: 0 }, createdAt: now, expiresAt: now + HOUR })
    await pool.query('SET SESSION innodb_lock_wait_timeout = 1')
    const holder = await adminPool().getConnection()
    try {
      await holder.query('START TRANSACTION')
      await holder.query(`SELECT id FROM \`${storage.table}\` WHERE id = ? FOR UPDATE`, [Buffer.from(locked)])
      const before = transactions()
      const outcomes = await storage.batch([
        { type: 'set', id: fresh, record: { data: { n: 1 }, createdAt: now, expiresAt: now + HOUR } },
        { type: 'update', id: locked, key: 'n', value: 2, expiresAt: now + HOUR },
        { type: 'delete', id: generateId() },
      ])
      t.is(transactions() - before, 1, 'one transaction: the storage does not replay it')
      t.is(outcomes.length, 3)
      for (const outcome of outcomes) {
        t.true(isSessionError(outcome, 'SESSION_STORAGE_ERROR'), 'never reported as applied')
        t.is(((outcome as Error).cause as { code?: string }).code, 'ER_LOCK_WAIT_TIMEOUT')
      }
    } finally {
      await holder.query('ROLLBACK')
      holder.release()
    }
    t.is(await storage.get(fresh), undefined, 'the set that ran before the timeout was rolled back with the rest')
    t.deepEqual((await storage.get(locked))?.data, { n: 0 })
  })
})

mysqlTest('mysql: a batch chosen as a deadlock victim fails every operation and is not replayed by the storage (the write queue retries)', async (t) => {
  await withOneConnection(async (storage, _pool, transactions) => {
    const now = Date.now()
    const [locked, fresh] = [generateId(), generateId()]
    await storage.set(locked, { data: { n: 0 }, createdAt: now, expiresAt: now + HOUR })
    const holder = await adminPool().getConnection()
    let outcomes
    const before = transactions()
    try {
      await holder.query('START TRANSACTION')
      // The other transaction writes more rows, so the server picks the batch as the victim.
      const filler = Array.from({ length: 50 }, () => [Buffer.from(generateId()), '{}', now, now + HOUR])
      await holder.query(`INSERT INTO \`${storage.table}\` (id, data, created_at, expires_at) VALUES ?`, [filler])
      await holder.query(`SELECT id FROM \`${storage.table}\` WHERE id = ? FOR UPDATE`, [Buffer.from(locked)])
      const batch = storage.batch([
        { type: 'set', id: fresh, record: { data: { n: 1 }, createdAt: now, expiresAt: now + HOUR } },
        { type: 'update', id: locked, key: 'n', value: 2, expiresAt: now + HOUR },
      ])
      await lockWaiting(holder)
      // Wait for the row the batch inserted while the batch waits for ours: a deadlock.
      await holder.query(`SELECT id FROM \`${storage.table}\` WHERE id = ? FOR UPDATE`, [Buffer.from(fresh)])
      outcomes = await batch
    } finally {
      await holder.query('ROLLBACK')
      holder.release()
    }
    t.is(transactions() - before, 1, 'one transaction: the storage does not replay it')
    t.is(outcomes.length, 2)
    for (const outcome of outcomes) {
      t.true(isSessionError(outcome, 'SESSION_STORAGE_ERROR'))
      t.is(((outcome as Error).cause as { code?: string }).code, 'ER_LOCK_DEADLOCK')
    }
    t.is(await storage.get(fresh), undefined)
    t.deepEqual((await storage.get(locked))?.data, { n: 0 })
  })
})

// Conditional writes in the batch path: the round's one locking read decides every operation
// (no statement per operation), and waits for what another process is writing.

/** A storage on a pool of its own whose batch statements are counted. */
async function withCountedStorage(body: (storage: MySQLStorage, statements: string[]) => Promise<void>): Promise<void> {
  const pool = createPool({ uri: MYSQL_URL, connectionLimit: 2 })
  const statements: string[] = []
  const getConnection = pool.getConnection.bind(pool)
  pool.getConnection = async () => {
    const connection: PoolConnection = await getConnection()
    const query = connection.query.bind(connection) as (sql: string, values?: unknown) => Promise<unknown>
    ;(connection as unknown as { query: typeof query }).query = (sql, values) => {
      statements.push(sql.trim().split(/\s+/).slice(0, 2).join(' '))
      return query(sql, values)
    }
    return connection
  }
  const storage = new MySQLStorage({ pool, table: uniqueTable('batch_conditional') })
  try {
    await body(storage, statements)
  } finally {
    await storage.close()
    await pool.end()
    await dropTable(storage.table)
  }
}

mysqlTest('mysql: a batch of conditional writes of many sessions is one locking read and one statement per kind, whatever the outcomes', async (t) => {
  await withCountedStorage(async (storage, statements) => {
    const now = Date.now()
    const ids = Array.from({ length: 200 }, () => generateId())
    await storage.batch(ids.map((id) => ({ type: 'set', id, record: { data: { n: 0 }, createdAt: now, expiresAt: now + HOUR }, ifVersion: 0 })))
    statements.length = 0
    const operations: StorageOperation[] = ids.map((id, i) => ({
      type: 'update',
      id,
      key: 'n',
      value: 1,
      expiresAt: now + HOUR,
      ifVersion: i % 4 === 0 ? 7 : 1,
    }))
    operations.push(...ids.slice(0, 50).map((id): StorageOperation => ({ type: 'delete', id, ifVersion: 2 })))
    const outcomes = await storage.batch(operations)
    t.is(outcomes.filter((outcome) => outcome === true).length, 150 + 37, 'the matching updates, and the deletes of ids whose update applied')
    t.is(outcomes.filter((outcome) => outcome === 'conflict').length, 50 + 13)
    t.deepEqual(
      statements,
      [
        'START TRANSACTION',
        'UPDATE JSON_TABLE(?,',
        'ROLLBACK',
        'START TRANSACTION',
        'SELECT id,',
        'UPDATE JSON_TABLE(?,',
        'SELECT id,',
        'DELETE FROM',
        'COMMIT',
      ],
      'the conditional updates tried without a read and rolled back (not all applied), then two rounds: a locking read and one statement each',
    )
    const versions = await storage.versions(ids)
    t.is(versions.size, 200 - 37, 'the deleted are gone')
    for (const [i, id] of ids.entries()) if (i >= 50) t.is(versions.get(id), i % 4 === 0 ? 1 : 2)
  })
})

mysqlTest('mysql: a batch of conditional key changes that all apply is one statement, without a locking read', async (t) => {
  await withCountedStorage(async (storage, statements) => {
    const now = Date.now()
    const ids = Array.from({ length: 200 }, () => generateId())
    await storage.batch(ids.map((id) => ({ type: 'set', id, record: { data: { n: 0, gone: true }, createdAt: now, expiresAt: now + HOUR }, ifVersion: 0 })))
    statements.length = 0
    const operations: StorageOperation[] = ids.map((id, i) =>
      i % 2 === 0
        ? { type: 'update', id, key: 'n', value: i, expiresAt: now + HOUR, ifVersion: 1 }
        : { type: 'remove', id, key: 'gone', expiresAt: now + HOUR, ifVersion: 1 },
    )
    operations.push(...ids.map((id, i): StorageOperation => ({ type: 'update', id, key: 'm', value: i, expiresAt: now + HOUR, ifVersion: 2 })))
    const outcomes = await storage.batch(operations)
    t.true(
      outcomes.every((outcome) => outcome === true),
      'every change applied',
    )
    t.deepEqual(statements, ['START TRANSACTION', 'UPDATE JSON_TABLE(?,', 'UPDATE JSON_TABLE(?,', 'COMMIT'], 'one statement per round')
    const versions = await storage.versions(ids)
    for (const id of ids) t.is(versions.get(id), 3)
    for (const [i, id] of ids.entries()) {
      const record = await storage.get(id)
      t.deepEqual(record?.data, i % 2 === 0 ? { n: i, gone: true, m: i } : { n: 0, m: i })
    }
  })
})

mysqlTest('mysql: a batch waits for rows another process is writing and decides its conditional writes on what that process committed', async (t) => {
  await withCountedStorage(async (storage) => {
    const now = Date.now()
    const [created, changed, fresh] = [generateId(), generateId(), generateId()]
    await storage.set(changed, { data: { n: 0 }, createdAt: now, expiresAt: now + HOUR })
    // A connection of its own: the file's admin pool has two, which the other lock tests may hold.
    const holder = await createConnection(MYSQL_URL)
    try {
      await holder.query('START TRANSACTION')
      await holder.query(`INSERT INTO \`${storage.table}\` (id, data, created_at, expires_at) VALUES (?, '{}', ?, ?)`, [Buffer.from(created), now, now + HOUR])
      await holder.query(`UPDATE \`${storage.table}\` SET version = version + 1 WHERE id = ?`, [Buffer.from(changed)])
      const batch = storage.batch([
        { type: 'set', id: created, record: { data: { by: 'batch' }, createdAt: now, expiresAt: now + HOUR }, ifVersion: 0 },
        { type: 'update', id: changed, key: 'n', value: 1, expiresAt: now + HOUR, ifVersion: 1 },
        { type: 'set', id: fresh, record: { data: { by: 'batch' }, createdAt: now, expiresAt: now + HOUR }, ifVersion: 0 },
      ])
      await lockWaiting(holder)
      await holder.query('COMMIT')
      t.deepEqual(await batch, ['conflict', 'conflict', true])
    } finally {
      await holder.end()
    }
    t.deepEqual((await storage.get(created))?.data, {}, 'what the other process created stays')
    t.like(await storage.get(changed), { data: { n: 0 }, version: 2 })
    t.like(await storage.get(fresh), { data: { by: 'batch' }, version: 1 })
  })
})
