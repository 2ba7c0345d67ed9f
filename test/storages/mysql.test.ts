import test, { type ExecutionContext } from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionError, isSessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import { isLive } from '../../src/kit/index.js'
import type { SessionRecordInput, StorageOperation } from '../../src/types.js'
import { MySQLStorage, type MySQLStorageOptions } from '../../storages/mysql.js'
import { ISSUER_COLUMN, PRINCIPAL_COLUMN, statements } from '../../storages/mysql/statements.js'
import { adminPool, closeAdmin, dropTable, uniqueTable } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'
import { storageContract } from '../helpers/storage-contract.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'
import { twoManagersKeepTheirWrites } from '../helpers/two-managers.js'

const HOUR = 3_600_000
const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))
const reachable = mysqlTest === test

test.after.always(closeAdmin)

function record(data: SessionRecordInput['data'], overrides: Partial<SessionRecordInput> = {}): SessionRecordInput {
  const now = Date.now()
  return { data, createdAt: now, expiresAt: now + HOUR, ...overrides }
}

/** Run `body` with a storage on a fresh table, closed and dropped afterwards. */
async function withStorage(body: (storage: MySQLStorage) => Promise<void>, options: Partial<MySQLStorageOptions> = {}): Promise<void> {
  const storage = new MySQLStorage({ uri: MYSQL_URL, table: uniqueTable(), ...options })
  try {
    await body(storage)
  } finally {
    await storage.close()
    await dropTable(storage.table)
  }
}

if (reachable) {
  storageContract('mysql', {
    open: async () => new MySQLStorage({ uri: MYSQL_URL, table: uniqueTable() }),
    openWithClock: async (now) => new MySQLStorage({ uri: MYSQL_URL, table: uniqueTable(), now }),
    dispose: async (storage) => dropTable((storage as MySQLStorage).table),
    // Another pool on the same table, as another process would have.
    openTwin: async (storage) => new MySQLStorage({ uri: MYSQL_URL, table: (storage as MySQLStorage).table }),
  })
}

test('mysql: options are checked', (t) => {
  t.throws(() => new MySQLStorage({}), { instanceOf: TypeError, message: /exactly one of the options "uri", "pool" or "connection"/ })
  t.throws(() => new MySQLStorage({ uri: MYSQL_URL, connection: { host: '127.0.0.1' } }), { instanceOf: TypeError, message: /"uri" and "connection"/ })
  t.throws(() => new MySQLStorage({ uri: 'postgres://x' }), { instanceOf: TypeError, message: /"uri"/ })
  t.throws(() => new MySQLStorage({ uri: MYSQL_URL, table: 'sessions; DROP TABLE users' }), { instanceOf: TypeError, message: /"table"/ })
  t.throws(() => new MySQLStorage({ uri: MYSQL_URL, table: 'a`b' }), { instanceOf: TypeError, message: /"table"/ })
  t.throws(() => new MySQLStorage({ uri: MYSQL_URL, createTable: 'yes' as unknown as boolean }), { instanceOf: TypeError, message: /"createTable"/ })
  t.throws(() => new MySQLStorage({ pool: {} as never }), { instanceOf: TypeError, message: /"pool"/ })
  t.throws(() => new MySQLStorage(null as never), { instanceOf: TypeError })
})

mysqlTest('mysql: the table it creates has a binary id, JSON data, indexed deadlines and an indexed principal', async (t) => {
  await withStorage(async (storage) => {
    t.is(await storage.get(generateId()), undefined)
    const [columns] = await adminPool().query<Array<{ COLUMN_NAME: string; DATA_TYPE: string; IS_NULLABLE: string } & import('mysql2').RowDataPacket>>(
      'SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
      [storage.table],
    )
    t.deepEqual(
      columns.map((c) => [c.COLUMN_NAME, c.DATA_TYPE, c.IS_NULLABLE]),
      [
        ['id', 'varbinary', 'NO'],
        ['data', 'longtext', 'NO'], // MariaDB's JSON is LONGTEXT with a json_valid() check
        ['created_at', 'bigint', 'NO'],
        ['expires_at', 'bigint', 'NO'],
        ['absolute_expires_at', 'bigint', 'YES'],
        ['version', 'int', 'NO'],
        ['issuer', 'varchar', 'YES'],
        ['principal', 'varbinary', 'YES'],
      ],
    )
    t.deepEqual(await indexesOf(storage.table), [
      ['PRIMARY', 'id'],
      ['absolute_expires_at', 'absolute_expires_at'],
      ['expires_at', 'expires_at'],
      ['principal', 'principal,created_at'],
    ])
  })
})

/** Each index of `table` and its columns in order, by index name. */
async function indexesOf(table: string): Promise<Array<[string, string]>> {
  const [rows] = await adminPool().query<Array<{ name: string; columns: string } & import('mysql2').RowDataPacket>>(
    `SELECT INDEX_NAME AS name, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS columns FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? GROUP BY INDEX_NAME ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME`,
    [table],
  )
  return rows.map((row) => [row.name, row.columns])
}

mysqlTest('mysql: findByPrincipal reads the principal index, not the table', async (t) => {
  await withStorage(async (storage) => {
    const now = Date.now()
    await storage.batch(
      Array.from({ length: 400 }, (_, i) => ({
        type: 'set' as const,
        id: generateId(),
        record: record({ userId: i % 100 }, { principal: String(i % 100), createdAt: now - i }),
      })),
    )
    t.is((await storage.findByPrincipal('7')).length, 4)
    const sql = statements(`\`${storage.table}\``)
    const [plan] = await adminPool().query<Array<{ key: string | null; type: string } & import('mysql2').RowDataPacket>>(`EXPLAIN ${sql.findByPrincipal}`, [
      Buffer.from('7'),
      now,
      now,
    ])
    t.is(plan[0]?.key, 'principal')
    t.is(plan[0]?.type, 'ref')
  })
})

mysqlTest("mysql: the SQL liveness conditions follow the storage's now option and the kit's rule, at the deadlines too", async (t) => {
  // Ten hours behind the machine: every record below is expired by the machine's clock, so
  // those returned are live by the storage's clock, which reaches every statement.
  let now = Date.now() - 10 * HOUR
  await withStorage(
    async (storage) => {
      const start = now
      const deadlines = [
        { expiresAt: start + 1 },
        { expiresAt: start },
        { expiresAt: start - 1 },
        { expiresAt: start + HOUR, absoluteExpiresAt: start + 1 },
        { expiresAt: start + HOUR, absoluteExpiresAt: start },
        { expiresAt: start + HOUR, absoluteExpiresAt: start - 1 },
      ]
      const ids = deadlines.map(() => generateId())
      for (const [i, deadline] of deadlines.entries()) await storage.set(ids[i]!, { data: { i }, createdAt: start - HOUR, ...deadline })
      const live = (at: number): string[] => ids.filter((_, i) => isLive(deadlines[i]!, at))
      t.is(live(now).length, 2, 'one just before each deadline')
      for (const [i, id] of ids.entries()) t.is((await storage.get(id)) !== undefined, isLive(deadlines[i]!, now), `get of record ${i}`)
      t.is(await storage.length(), live(now).length)
      const listed: string[] = []
      for await (const [id] of storage.all()) listed.push(id)
      t.deepEqual(listed.sort(), live(now).sort())
      for (const [i, id] of ids.entries())
        t.is(await storage.update(id, 'seen', true, deadlines[i]!.expiresAt), isLive(deadlines[i]!, now), `update of record ${i}`)
      const outcomes = await storage.batch(ids.map((id, i) => ({ type: 'remove' as const, id, key: 'seen', expiresAt: deadlines[i]!.expiresAt })))
      t.deepEqual(
        outcomes,
        deadlines.map((deadline) => isLive(deadline, now)),
      )
      now += 1 // the storage's clock reaches the first record's idle deadline and the fourth's absolute one
      t.is(await storage.get(ids[0]!), undefined, 'expired by the storage clock')
      t.is(await storage.get(ids[3]!), undefined, 'past its absolute deadline by the storage clock')
      t.false(await storage.touch(ids[0]!, now + HOUR))
      t.deepEqual(await storage.batch([{ type: 'touch', id: ids[3]!, expiresAt: now + HOUR }]), [false])
      t.is(await storage.length(), 0)
      t.is(await storage.cleanup(), ids.length, 'cleanup() defaults to the storage clock')
    },
    { now: () => now },
  )
})

mysqlTest('mysql: values keep their JSON type, and writing the same value again still counts as found', async (t) => {
  await withStorage(async (storage) => {
    const id = generateId()
    await storage.set(id, record({}))
    const values = {
      text: '42',
      number: 42,
      float: 0.1 + 0.2,
      big: 1.5e300,
      yes: true,
      none: null,
      list: [],
      object: {},
      deep: { a: [{ b: 'ü 🍪' }] },
      quote: '"\\',
    }
    for (const [key, value] of Object.entries(values)) t.true(await storage.update(id, key, value, Date.now() + HOUR))
    t.true(await storage.update(id, 'text', '42', Date.now() + HOUR), 'same value, still found')
    t.deepEqual((await storage.get(id))!.data, values)
    const [rows] = await adminPool().query<Array<{ t: string } & import('mysql2').RowDataPacket>>(
      `SELECT JSON_TYPE(JSON_EXTRACT(data, '$.text')) AS t FROM \`${storage.table}\``,
    )
    t.is(rows[0]!.t, 'STRING', 'a string is stored as a JSON string, not spliced in as raw JSON')
  })
})

mysqlTest('mysql: a batch with several operations per id applies them in order, in rounds', async (t) => {
  await withStorage(async (storage) => {
    const ids = Array.from({ length: 120 }, () => generateId())
    const expiresAt = Date.now() + HOUR
    const ops: StorageOperation[] = []
    for (const [i, id] of ids.entries()) {
      ops.push({ type: 'set', id, record: record({ i, gone: true }) })
      ops.push({ type: 'update', id, key: 'i', value: i * 2, expiresAt })
      ops.push({ type: 'remove', id, key: 'gone', expiresAt })
      ops.push({ type: 'touch', id, expiresAt: expiresAt + i })
      if (i % 3 === 0) ops.push({ type: 'delete', id }, { type: 'touch', id, expiresAt })
    }
    const outcomes = await storage.batch(ops)
    t.is(outcomes.length, ops.length)
    t.deepEqual(
      outcomes.map((outcome, index) => [ops[index]!.type, outcome]).filter(([, outcome]) => outcome !== true),
      ids.filter((_, i) => i % 3 === 0).map(() => ['touch', false]),
      'only the touches after a delete find nothing',
    )
    for (const [i, id] of ids.entries()) {
      const got = await storage.get(id)
      if (i % 3 === 0) t.is(got, undefined)
      else {
        t.deepEqual(got!.data, { i: i * 2 })
        t.is(got!.expiresAt, expiresAt + i)
        t.is(got!.version, 3, 'set, update and remove count; the touch does not')
      }
    }
  })
})

mysqlTest('mysql: an operation the server refuses fails alone: the transaction is rolled back and the others applied one by one', async (t) => {
  await withStorage(async (storage) => {
    const kept = generateId()
    await storage.set(kept, record({ before: true }))
    const tooLong = 'x'.repeat(65) // longer than VARBINARY(64): strict mode refuses the row
    const outcomes = await storage.batch([
      { type: 'update', id: kept, key: 'after', value: true, expiresAt: Date.now() + HOUR },
      { type: 'set', id: generateId(), record: record({ a: 1 }) },
      { type: 'set', id: tooLong, record: record({ a: 1 }) },
    ])
    t.deepEqual(outcomes.slice(0, 2), [true, true])
    const refused = outcomes[2]
    t.true(refused instanceof Error)
    t.true(isSessionError(refused, 'SESSION_STORAGE_ERROR'))
    t.regex((refused as Error).message, /^the mysql storage could not write a session$/)
    t.truthy((refused as Error).cause)
    t.deepEqual((await storage.get(kept))!.data, { before: true, after: true })
    t.is(await storage.length(), 2)
  })
})

mysqlTest('mysql: cleanup deletes thousands of expired rows in chunks, and all() pages through live ones', async (t) => {
  await withStorage(async (storage) => {
    const now = Date.now()
    const expired = Array.from({ length: 2300 }, (_, i) => ({ type: 'set' as const, id: generateId(), record: record({ i }, { expiresAt: now - 1000 - i }) }))
    const live = Array.from({ length: 1100 }, (_, i) => ({ type: 'set' as const, id: generateId(), record: record({ i }) }))
    for (let i = 0; i < expired.length; i += 500) t.true((await storage.batch(expired.slice(i, i + 500))).every((outcome) => outcome === true))
    for (let i = 0; i < live.length; i += 500) t.true((await storage.batch(live.slice(i, i + 500))).every((outcome) => outcome === true))
    t.is(await storage.length(), 1100)
    const seen = new Set<string>()
    for await (const [id] of storage.all()) seen.add(id)
    t.is(seen.size, 1100)
    t.true(live.every((op) => seen.has(op.id)))
    t.is(await storage.cleanup(now), 2300)
    t.is(await storage.cleanup(now), 0)
    const [rows] = await adminPool().query<Array<{ n: number } & import('mysql2').RowDataPacket>>(`SELECT COUNT(*) AS n FROM \`${storage.table}\``)
    t.is(Number(rows[0]!.n), 1100)
  })
})

mysqlTest('mysql: two managers on one table each keep their writes to different keys of one session', async (t) => {
  const table = uniqueTable()
  try {
    await twoManagersKeepTheirWrites(t, async () => new MySQLStorage({ uri: MYSQL_URL, table }))
  } finally {
    await dropTable(table)
  }
})

mysqlTest('mysql: rows that are not usable records are absent and reported, never a crash', async (t) => {
  await withStorage(async (storage) => {
    const good = generateId()
    await storage.set(good, record({ ok: true }))
    const notAnObject = generateId()
    const aString = generateId()
    const expiresAt = Date.now() + HOUR
    await adminPool().query(
      `INSERT INTO \`${storage.table}\` (id, data, created_at, expires_at, version) VALUES (?, '[1,2]', 1, ?, 1), (?, '"text"', 1, ?, 1)`,
      [notAnObject, expiresAt, aString, expiresAt],
    )
    for (const id of [notAnObject, aString]) {
      await t.throwsAsync(storage.get(id), { instanceOf: SessionError, message: /the mysql storage .*not a JSON object/ })
      t.false(await storage.update(id, 'k', 1, expiresAt), 'a key cannot be set in data that is not an object')
    }
    await managerTreatsAsAbsent(t, storage, notAnObject)
    t.deepEqual((await storage.get(good))!.data, { ok: true })
  })
})

mysqlTest('mysql: in a table made by hand, unparsable data and missing timestamps are invalid records', async (t) => {
  const table = uniqueTable()
  await adminPool().query(
    `CREATE TABLE \`${table}\` (id VARBINARY(64) PRIMARY KEY, data LONGTEXT, created_at BIGINT NULL, expires_at BIGINT NULL, absolute_expires_at BIGINT NULL, version INT NULL)`,
  )
  try {
    await withStorage(
      async (storage) => {
        const [broken, noCreated, noVersion] = [generateId(), generateId(), generateId()]
        const expiresAt = Date.now() + HOUR
        await adminPool().query(
          `INSERT INTO \`${table}\` (id, data, created_at, expires_at, version) VALUES (?, '{"a":', 1, ?, 1), (?, '{"a":1}', NULL, ?, 1), (?, '{"a":1}', 1, ?, NULL)`,
          [broken, expiresAt, noCreated, expiresAt, noVersion, expiresAt],
        )
        await t.throwsAsync(storage.get(broken), { instanceOf: SessionError, message: /not JSON/ })
        await t.throwsAsync(storage.get(noCreated), { instanceOf: SessionError, message: /timestamps are missing/ })
        await t.throwsAsync(storage.get(noVersion), { instanceOf: SessionError, message: /version is missing/ })
        t.false(await storage.update(broken, 'a', 2, expiresAt))
        await managerTreatsAsAbsent(t, storage, broken)
        const id = generateId()
        await storage.set(id, record({ works: 'here too' }))
        t.true(await storage.update(id, 'more', 1, expiresAt))
        t.deepEqual((await storage.get(id))!.data, { works: 'here too', more: 1 })
      },
      { table, createTable: false },
    )
  } finally {
    await dropTable(table)
  }
})

/** The table an earlier version created: no `issuer` column (unless `extra` adds it), no `principal` column. */
async function tableWithoutIssuer(extra = ''): Promise<string> {
  const table = uniqueTable()
  await adminPool().query(`CREATE TABLE \`${table}\` (
    id VARBINARY(64) NOT NULL, data JSON NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
    absolute_expires_at BIGINT NULL, version INT UNSIGNED NOT NULL DEFAULT 1, ${extra} PRIMARY KEY (id)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`)
  return table
}

async function hasColumn(table: string, column: string): Promise<boolean> {
  const [rows] = await adminPool().query<Array<{ n: number } & import('mysql2').RowDataPacket>>(
    'SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?',
    [table, column],
  )
  return Number(rows[0]!.n) === 1
}

async function hasIssuerColumn(table: string): Promise<boolean> {
  return hasColumn(table, 'issuer')
}

mysqlTest(
  'mysql: a table made before the issuer and principal columns gets them and the principal index on first use, and its rows keep working',
  async (t) => {
    const table = await tableWithoutIssuer()
    const old = generateId()
    const expiresAt = Date.now() + HOUR
    await adminPool().query(`INSERT INTO \`${table}\` (id, data, created_at, expires_at, version) VALUES (?, '{"user":"ada"}', 1, ?, 4)`, [old, expiresAt])
    try {
      await withStorage(
        async (storage) => {
          const got = await storage.get(old)
          t.deepEqual(got?.data, { user: 'ada' })
          t.is(got?.issuer, undefined, 'a row from before has no issuer')
          t.is(got?.principal, undefined, 'nor a principal')
          t.true(await hasIssuerColumn(table))
          t.true(await hasColumn(table, 'principal'))
          t.deepEqual((await indexesOf(table)).at(-1), ['principal', 'principal,created_at'])
          const id = generateId()
          await storage.set(id, record({ a: 1 }, { issuer: 'cookie:sid', principal: 'ada' }))
          t.is((await storage.get(id))?.issuer, 'cookie:sid')
          t.true(await storage.update(old, 'user', 'ada', expiresAt, undefined, 'ada'), 'a row from before takes a principal')
          t.deepEqual(
            (await storage.findByPrincipal('ada')).map((session) => session.id),
            [old, id],
          )
          // A second storage (another process starting) finds the columns there.
          const twin = new MySQLStorage({ uri: MYSQL_URL, table })
          t.is((await twin.get(id))?.issuer, 'cookie:sid')
          t.is((await twin.get(id))?.principal, 'ada')
          await twin.close()
        },
        { table },
      )
    } finally {
      await dropTable(table)
    }
  },
)

mysqlTest('mysql: with createTable false, a table without the issuer column is used as it is, with a warning', async (t) => {
  const table = await tableWithoutIssuer()
  const warnings: string[] = []
  const onWarning = (warning: Error & { code?: string }): void => {
    if (warning.code === 'SESSION_MYSQL_NO_ISSUER' && warning.message.includes(table)) warnings.push(warning.message)
  }
  process.on('warning', onWarning)
  try {
    await withStorage(
      async (storage) => {
        const id = generateId()
        await storage.set(id, record({ a: 1 }, { issuer: 'cookie:sid' }))
        t.true(await storage.update(id, 'b', 2, Date.now() + HOUR))
        const got = await storage.get(id)
        t.deepEqual(got?.data, { a: 1, b: 2 })
        t.is(got?.issuer, undefined)
        t.false(await hasIssuerColumn(table), 'the table is not altered')
        await new Promise((resolve) => setImmediate(resolve))
        t.is(warnings.length, 1)
        t.regex(warnings[0]!, /ALTER TABLE .* ADD COLUMN issuer VARCHAR\(255\)/)
      },
      { table, createTable: false },
    )
  } finally {
    process.off('warning', onWarning)
    await dropTable(table)
  }
})

mysqlTest('mysql: a table with the issuer column but not the principal one gets it; one with the column but not its index gets the index', async (t) => {
  const withIssuer = await tableWithoutIssuer(`${ISSUER_COLUMN},`)
  const withoutIndex = await tableWithoutIssuer(`${ISSUER_COLUMN}, ${PRINCIPAL_COLUMN},`)
  try {
    for (const table of [withIssuer, withoutIndex]) {
      // Two processes starting at once: one adds what is missing, the other finds it added.
      const [first, second] = [new MySQLStorage({ uri: MYSQL_URL, table }), new MySQLStorage({ uri: MYSQL_URL, table })]
      await Promise.all([first.open(), second.open()])
      t.deepEqual((await indexesOf(table)).at(-1), ['principal', 'principal,created_at'], table === withIssuer ? 'with the issuer column' : 'without the index')
      const id = generateId()
      await first.set(id, record({ userId: 'ada' }, { principal: 'ada' }))
      t.deepEqual(
        (await second.findByPrincipal('ada')).map((session) => session.id),
        [id],
      )
      await Promise.all([first.close(), second.close()])
    }
  } finally {
    await dropTable(withIssuer)
    await dropTable(withoutIndex)
  }
})

mysqlTest('mysql: with createTable false, a table without the principal column keeps no principal and findByPrincipal refuses, with a warning', async (t) => {
  const table = await tableWithoutIssuer(`${ISSUER_COLUMN},`)
  const warnings: string[] = []
  const onWarning = (warning: Error & { code?: string }): void => {
    if (warning.code === 'SESSION_MYSQL_NO_PRINCIPAL' && warning.message.includes(table)) warnings.push(warning.message)
  }
  process.on('warning', onWarning)
  try {
    await withStorage(
      async (storage) => {
        const id = generateId()
        await storage.set(id, record({ userId: 'ada' }, { principal: 'ada', issuer: 'cookie:sid' }))
        t.true(await storage.update(id, 'userId', 'bob', Date.now() + HOUR, undefined, 'bob'))
        t.deepEqual(await storage.batch([{ type: 'remove', id, key: 'userId', expiresAt: Date.now() + HOUR, principal: null }]), [true])
        const got = await storage.get(id)
        t.is(got?.issuer, 'cookie:sid')
        t.is(got?.principal, undefined)
        const refused = await t.throwsAsync(storage.findByPrincipal('ada'))
        t.true(isSessionError(refused, 'SESSION_INVALID_STATE'), 'refuses, never an empty list')
        t.regex(refused.message, /has no "principal" column/)
        t.false(await hasColumn(table, 'principal'), 'the table is not altered')
        await new Promise((resolve) => setImmediate(resolve))
        t.is(warnings.length, 1)
        t.regex(warnings[0]!, /ALTER TABLE .* ADD COLUMN principal VARBINARY\(765\) NULL, ADD KEY principal \(principal, created_at\)/)
      },
      { table, createTable: false },
    )
  } finally {
    process.off('warning', onWarning)
    await dropTable(table)
  }
})

mysqlTest('mysql: a server that is down rejects with an error naming the storage, and the manager answers 503', async (t) => {
  const storage = new MySQLStorage({ connection: { host: '127.0.0.1', port: 1, user: 'root', database: 'test', connectTimeout: 2000 } })
  const error = await t.throwsAsync(storage.get(generateId()))
  t.true(isSessionError(error, 'SESSION_STORAGE_ERROR'))
  t.regex(error.message, /^the mysql storage could not read a session$/)
  t.truthy(error.cause)
  await t.throwsAsync(storage.set(generateId(), record({})), { instanceOf: SessionError, message: /^the mysql storage could not write a session/ })
  const outcomes = await storage.batch([{ type: 'touch', id: generateId(), expiresAt: Date.now() + HOUR }])
  t.true(outcomes[0] instanceof Error)
  t.true(isSessionError(outcomes[0], 'SESSION_STORAGE_ERROR'))
  t.regex((outcomes[0] as Error).message, /^the mysql storage could not write sessions/)
  t.truthy((outcomes[0] as Error).cause)

  const manager = new SessionManager({ storage, identities: [new CookieIdentity()] })
  const loading = manager.load(fakeRequest({ cookie: `sid=${generateId()}` }), new FakeResponse())
  const unavailable = await t.throwsAsync(loading, { instanceOf: SessionError })
  t.is(unavailable.code, 'SESSION_STORAGE_UNAVAILABLE')
  t.is(unavailable.status, 503)
  await manager.close()
})

mysqlTest('mysql: a pool passed in is used and left open', async (t) => {
  const table = uniqueTable()
  const storage = new MySQLStorage({ pool: adminPool(), table })
  try {
    const id = generateId()
    await storage.set(id, record({ shared: true }))
    await storage.close()
    await storage.close()
    const closed = await t.throwsAsync(storage.get(id), { message: /^the mysql storage is closed/ })
    t.true(isSessionError(closed, 'SESSION_CLOSED'))
    const [rows] = await adminPool().query<Array<{ n: number } & import('mysql2').RowDataPacket>>(`SELECT COUNT(*) AS n FROM \`${table}\``)
    t.is(Number(rows[0]!.n), 1, 'the pool still answers')
  } finally {
    await dropTable(table)
  }
})

async function managerTreatsAsAbsent(t: ExecutionContext, storage: MySQLStorage, id: string): Promise<void> {
  // A manager that does not own the storage: closing it would close the storage under the test.
  const manager = new SessionManager({
    storage: new MySQLStorage({ pool: adminPool(), table: storage.table, createTable: false }),
    identities: [new CookieIdentity()],
  })
  const reported: Error[] = []
  manager.on('error', (err) => reported.push(err))
  const session = await manager.load(fakeRequest({ cookie: `sid=${id}` }), new FakeResponse())
  t.true(session.isNew, 'a new session, not the unusable one')
  t.is(reported.length, 1)
  t.is((reported[0] as SessionError).code, 'SESSION_INVALID_RECORD')
  await manager.close()
}
