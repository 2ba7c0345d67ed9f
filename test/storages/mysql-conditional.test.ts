import test from 'ava'
import { createPool, type PoolConnection } from 'mysql2/promise'
import { generateId } from '../../src/ids.js'
import type { StorageOperation } from '../../src/kit/index.js'
import { MySQLStorage } from '../../storages/mysql.js'
import { adminPool, closeAdmin, dropTable, uniqueTable } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'

// Conditional writes in MySQL's batch path: the round's one locking read decides every
// operation (no statement per operation), and waits for what another process is writing.

const HOUR = 3_600_000
const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))

test.after.always(closeAdmin)

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
  const storage = new MySQLStorage({ pool, table: uniqueTable('conditional') })
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
      ['START TRANSACTION', 'SELECT id,', 'UPDATE JSON_TABLE(?,', 'SELECT id,', 'DELETE FROM', 'COMMIT'],
      'two rounds: a locking read and one statement each',
    )
    const versions = await storage.versions(ids)
    t.is(versions.size, 200 - 37, 'the deleted are gone')
    for (const [i, id] of ids.entries()) if (i >= 50) t.is(versions.get(id), i % 4 === 0 ? 1 : 2)
  })
})

mysqlTest('mysql: a batch waits for rows another process is writing and decides its conditional writes on what that process committed', async (t) => {
  await withCountedStorage(async (storage) => {
    const now = Date.now()
    const [created, changed, fresh] = [generateId(), generateId(), generateId()]
    await storage.set(changed, { data: { n: 0 }, createdAt: now, expiresAt: now + HOUR })
    const holder = await adminPool().getConnection()
    try {
      await holder.query('START TRANSACTION')
      await holder.query(`INSERT INTO \`${storage.table}\` (id, data, created_at, expires_at) VALUES (?, '{}', ?, ?)`, [Buffer.from(created), now, now + HOUR])
      await holder.query(`UPDATE \`${storage.table}\` SET version = version + 1 WHERE id = ?`, [Buffer.from(changed)])
      const batch = storage.batch([
        { type: 'set', id: created, record: { data: { by: 'batch' }, createdAt: now, expiresAt: now + HOUR }, ifVersion: 0 },
        { type: 'update', id: changed, key: 'n', value: 1, expiresAt: now + HOUR, ifVersion: 1 },
        { type: 'set', id: fresh, record: { data: { by: 'batch' }, createdAt: now, expiresAt: now + HOUR }, ifVersion: 0 },
      ])
      await lockWaiting()
      await holder.query('COMMIT')
      t.deepEqual(await batch, ['conflict', 'conflict', true])
    } finally {
      holder.release()
    }
    t.deepEqual((await storage.get(created))?.data, {}, 'what the other process created stays')
    t.like(await storage.get(changed), { data: { n: 0 }, version: 2 })
    t.like(await storage.get(fresh), { data: { by: 'batch' }, version: 1 })
  })
})

/** Resolves once some transaction waits for a row lock. */
async function lockWaiting(): Promise<void> {
  for (;;) {
    const [rows] = await adminPool().query<Array<{ n: number } & import('mysql2').RowDataPacket>>(
      "SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'",
    )
    if (Number(rows[0]!.n) > 0) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
