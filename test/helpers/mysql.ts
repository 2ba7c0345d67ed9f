import { randomBytes } from 'node:crypto'
import { createPool, type Pool } from 'mysql2/promise'
import { MYSQL_URL } from './services.js'

let admin: Pool | undefined

/** A pool for setting up and inspecting test tables; close it with {@link closeAdmin}. */
export function adminPool(): Pool {
  admin ??= createPool({ uri: MYSQL_URL, connectionLimit: 2 })
  return admin
}

/** Close the pool of {@link adminPool}, if it was opened. */
export async function closeAdmin(): Promise<void> {
  const pool = admin
  admin = undefined
  await pool?.end()
}

/** A table name no other test uses. */
export function uniqueTable(prefix = 'sessions_test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`
}

/** Drop a test table; a missing one is fine. */
export async function dropTable(table: string): Promise<void> {
  await adminPool().query(`DROP TABLE IF EXISTS \`${table}\``)
}
