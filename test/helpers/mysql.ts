import { randomBytes } from 'node:crypto'
import { createPool, type Pool, type PoolConnection } from 'mysql2/promise'
import { MYSQL_URL } from './services.js'

/**
 * The admin pool of a test file: one pool, shared by the tests of the file, that ava runs
 * concurrently. {@link closeAdmin} may be called by any of them (a test's teardown, or the
 * file's `after.always`) while others still use the pool, so closing never cuts anyone off:
 * it retires the pool (the next {@link adminPool} call opens a fresh one) and ends the retired
 * pool only once every query and connection taken from it has finished.
 */
interface Shared {
  readonly pool: Pool
  /** Queries running and connections taken from `pool` and not yet released. */
  busy: number
  /** Set once the pool is retired: ends it when `busy` reaches 0. */
  onIdle: (() => void) | undefined
  /** Once ended, whoever still holds the pool is served by the file's current one. */
  ended: boolean
}

let current: Shared | undefined

function open(): Shared {
  const pool = createPool({ uri: MYSQL_URL, connectionLimit: 2 })
  const shared: Shared = { pool, busy: 0, onIdle: undefined, ended: false }
  const done = (): void => {
    shared.busy--
    if (shared.busy === 0) shared.onIdle?.()
  }
  const query = pool.query.bind(pool)
  const execute = pool.execute.bind(pool)
  const getConnection = pool.getConnection.bind(pool)
  // On the pool object itself, so that a holder of it (a storage given `pool: adminPool()`) is tracked too.
  pool.query = ((...args: Parameters<Pool['query']>) => {
    if (shared.ended) return adminPool().query(...args)
    shared.busy++
    return query(...args).finally(done)
  }) as Pool['query']
  pool.execute = ((...args: Parameters<Pool['execute']>) => {
    if (shared.ended) return adminPool().execute(...args)
    shared.busy++
    return execute(...args).finally(done)
  }) as Pool['execute']
  pool.getConnection = async (): Promise<PoolConnection> => {
    if (shared.ended) return adminPool().getConnection()
    shared.busy++
    let connection: PoolConnection
    try {
      connection = await getConnection()
    } catch (err) {
      done()
      throw err
    }
    // Busy until the connection goes back (or away); only its first release counts.
    let held = true
    const giveBack = (): void => {
      if (!held) return
      held = false
      done()
    }
    const release = connection.release.bind(connection)
    const destroy = connection.destroy.bind(connection)
    connection.release = () => {
      release()
      giveBack()
    }
    connection.destroy = () => {
      destroy()
      giveBack()
    }
    return connection
  }
  return shared
}

/** The file's pool for setting up and inspecting test tables; {@link closeAdmin} retires it. */
export function adminPool(): Pool {
  current ??= open()
  return current.pool
}

/**
 * Retire the pool of {@link adminPool}, if one is open: a later {@link adminPool} opens a new
 * one, and this one is ended once nothing taken from it is in use. Resolves when it has ended.
 */
export async function closeAdmin(): Promise<void> {
  const retired = current
  if (retired === undefined) return
  current = undefined
  if (retired.busy > 0) await new Promise<void>((resolve) => (retired.onIdle = resolve))
  retired.ended = true
  await retired.pool.end()
}

/** A table name no other test uses. */
export function uniqueTable(prefix = 'sessions_test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`
}

/** Drop a test table; a missing one is fine. */
export async function dropTable(table: string): Promise<void> {
  await adminPool().query(`DROP TABLE IF EXISTS \`${table}\``)
}
