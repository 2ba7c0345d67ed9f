import { adminPool, closeAdmin, dropTable, uniqueTable } from './mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from './services.js'

// The admin pool is shared by the tests of a file, which run concurrently, and any of them may
// close it (a test's teardown) while the others use it: closing must never cut anyone off.

const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))
mysqlTest.after.always(closeAdmin)

mysqlTest.serial('admin pool: a close waits for the queries running on it and the next call gets a fresh pool', async (t) => {
  const pool = adminPool()
  // More queries than connections (2): some wait in the pool's queue when the close comes.
  const running = Array.from({ length: 4 }, (_, i) => pool.query(`SELECT SLEEP(0.2), ${i} AS n`))
  let closed = false
  const closing = closeAdmin().then(() => (closed = true))
  t.not(adminPool(), pool, 'a fresh pool for later callers')
  const results = await Promise.all(running)
  t.deepEqual(
    results.map(([rows]) => (rows as Array<{ n: number }>)[0]!.n),
    [0, 1, 2, 3],
  )
  await closing
  t.true(closed)
  const [rows] = await adminPool().query('SELECT 1 AS one')
  t.is((rows as Array<{ one: number }>)[0]!.one, 1)
})

mysqlTest.serial('admin pool: a connection taken from it keeps it open until released', async (t) => {
  const connection = await adminPool().getConnection()
  let closed = false
  const closing = closeAdmin().then(() => (closed = true))
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.false(closed, 'not ended while the connection is out')
  const [rows] = await connection.query('SELECT 2 AS two')
  t.is((rows as Array<{ two: number }>)[0]!.two, 2)
  connection.release()
  connection.release() // a second release changes nothing
  await closing
  t.true(closed)
})

mysqlTest.serial('admin pool: whoever still holds a closed pool is served by the current one', async (t) => {
  const held = adminPool()
  await closeAdmin()
  const [rows] = await held.query('SELECT 3 AS three')
  t.is((rows as Array<{ three: number }>)[0]!.three, 3)
  const connection = await held.getConnection()
  connection.release()
})

// What the cluster test does: each test drops its table and closes the pool in its teardown,
// while the other tests are still creating and dropping theirs.
for (let i = 0; i < 8; i++) {
  mysqlTest(`admin pool: concurrent tests that each close it in their teardown (${i + 1})`, async (t) => {
    const table = uniqueTable('admin_pool_test')
    t.teardown(async () => {
      await dropTable(table)
      await closeAdmin()
    })
    await adminPool().query(`CREATE TABLE \`${table}\` (n INT)`)
    await adminPool().query(`INSERT INTO \`${table}\` VALUES (1), (2)`)
    const [rows] = await adminPool().query(`SELECT COUNT(*) AS n FROM \`${table}\``)
    t.is(Number((rows as Array<{ n: number }>)[0]!.n), 2)
  })
}
