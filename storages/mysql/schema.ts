/**
 * How `MySQLStorage` finds its table as it is, and brings one made by an earlier version up to
 * date: internal to `caching-session-manager/storages/mysql`.
 *
 * @internal
 * @module
 */
import type { Pool } from 'mysql2/promise'
import { codeOf, statements, type Columns, type SchemaRow, type Statements } from './statements.js'

/** The columns of the first version's table: what a table the storage may not alter is checked for. */
const FIRST_COLUMNS: Columns = { issuer: false, principal: false }
/** Schema reads in all when other processes keep adding the same missing parts meanwhile. */
const SCHEMA_TRIES = 3

/**
 * Create the table when it is missing (`createTable`), else check that it exists; then read
 * which of the later columns (`issuer`, `principal`) and the principal index it has. A table
 * made before them gets what it lacks in one `ALTER TABLE` when the storage manages the table
 * (a part another process added meanwhile is read again); otherwise it is used as it is, with a
 * warning for each missing part: records are then kept without their issuer or principal, and
 * `findByPrincipal` refuses without the column (reads the whole table without the index).
 * Resolves to the statements for the table as it now is.
 */
export async function checkSchema(pool: Pool, table: string, quoted: string, createTable: boolean): Promise<Statements> {
  const full = statements(quoted)
  // A table the storage does not create must exist: found missing here, before its columns are looked at.
  await pool.query(createTable ? full.create : statements(quoted, FIRST_COLUMNS).check)
  const [database, name] = table.includes('.') ? table.split('.') : [null, table]
  for (let tries = 1; ; tries++) {
    const [rows] = await pool.query<SchemaRow[]>(full.schema, [database, name, database, name, database, name])
    const row = rows[0]
    const missing = {
      issuer: !(Number(row?.issuer ?? 0) > 0),
      principal: !(Number(row?.principal ?? 0) > 0),
      principalIndex: !(Number(row?.principal_index ?? 0) > 0),
    }
    if (!missing.issuer && !missing.principal && !missing.principalIndex) return full
    if (!createTable) {
      warnAbout(table, missing, full)
      return statements(quoted, { issuer: !missing.issuer, principal: !missing.principal })
    }
    try {
      await pool.query(full.alter(missing))
      return full
    } catch (err) {
      // Another process added a part meanwhile: read again what is still missing.
      const code = codeOf(err)
      if (tries >= SCHEMA_TRIES || (code !== 'ER_DUP_FIELDNAME' && code !== 'ER_DUP_KEYNAME')) throw err
    }
  }
}

/** One warning for each part a table the storage may not alter lacks, with the statement that adds it. */
function warnAbout(table: string, missing: { issuer: boolean; principal: boolean; principalIndex: boolean }, full: Statements): void {
  const none = { issuer: false, principal: false, principalIndex: false }
  const prefix = `MySQLStorage: the table ${table} has no`
  if (missing.issuer) {
    process.emitWarning(
      `${prefix} "issuer" column (createTable is false, so it is not added): sessions are not bound to the identity that issued them. Add it: ${full.alter({ ...none, issuer: true })}`,
      { code: 'SESSION_MYSQL_NO_ISSUER' },
    )
  }
  if (missing.principal) {
    process.emitWarning(
      `${prefix} "principal" column (createTable is false, so it is not added): sessions are kept without their principal and findByPrincipal() refuses. Add it: ${full.alter({ ...none, principal: true, principalIndex: missing.principalIndex })}`,
      { code: 'SESSION_MYSQL_NO_PRINCIPAL' },
    )
  } else if (missing.principalIndex) {
    process.emitWarning(
      `${prefix} "principal" index (createTable is false, so it is not added): findByPrincipal() reads the whole table. Add it: ${full.alter({ ...none, principalIndex: true })}`,
      { code: 'SESSION_MYSQL_NO_PRINCIPAL_INDEX' },
    )
  }
}
