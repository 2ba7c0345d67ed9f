/**
 * The SQL of `MySQLStorage` and the rows it sends and reads: internal to
 * `caching-session-manager/storages/mysql`.
 *
 * @internal
 * @module
 */
import type { RowDataPacket } from 'mysql2/promise'
import type { RawRecord, StorageOperation } from '../../src/kit/index.js'

/**
 * The kit's liveness rule (`isLive` of src/kit/liveness.ts) in SQL, for `now` passed twice: live while
 * now < expires_at and (no absolute deadline, or now < absolute_expires_at). SQL `NULL` is "no
 * absolute deadline". {@link EXPIRED} is its negation, for cleanup.
 */
const LIVE = 'expires_at > ? AND (absolute_expires_at IS NULL OR absolute_expires_at > ?)'
const EXPIRED = 'expires_at <= ? OR absolute_expires_at <= ?'
/** Whether `data` holds a JSON object; JSON_VALID first, since JSON_TYPE of invalid text is an error in strict mode. */
const DATA_IS_OBJECT = "(CASE WHEN JSON_VALID(data) THEN JSON_TYPE(data) END) = 'OBJECT'"
/** The `issuer` column, as `create` makes it and as the schema check adds it to a table made before it. */
export const ISSUER_COLUMN = 'issuer VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL'
/**
 * The `principal` column: the principal's UTF-8 bytes (at most 3 per UTF-16 code unit, so 765
 * for 255 units). Bytes, not a `utf8mb4_bin` text column: those collations pad with spaces, so
 * `'ada'` and `'ada '` would be one principal.
 */
export const PRINCIPAL_COLUMN = 'principal VARBINARY(765) NULL'
/** The principal index: a principal's rows in creation order, for `findByPrincipal`. */
export const PRINCIPAL_INDEX = 'KEY principal (principal, created_at)'

/**
 * Which of the columns added after the first version a table has: one made before them works
 * without them, when the storage may not alter it.
 */
export interface Columns {
  /** The `issuer` column: without it, records are kept without their issuer. */
  readonly issuer: boolean
  /** The `principal` column: without it, records are kept without their principal and `findByPrincipal` refuses. */
  readonly principal: boolean
}

/** Every column: a table this version creates. */
export const ALL_COLUMNS: Columns = { issuer: true, principal: true }

/** What {@link statements}' `schema` reads of a table: 1 or 0 for each column, and for the principal index. */
export type SchemaRow = RowDataPacket & { issuer: unknown; principal: unknown; principal_index: unknown }

/** What every read of a row reads besides its id and data. */
export interface RowMetadata {
  created_at: unknown
  expires_at: unknown
  absolute_expires_at: unknown
  version: unknown
  /** Absent when the table has no `issuer` column. */
  issuer?: unknown
  /** The principal's UTF-8 bytes; absent when the table has no `principal` column (and from what `findByPrincipal` reads). */
  principal?: Buffer | null
}

export interface SessionRow extends RowDataPacket, RowMetadata {
  data: unknown
}

export type PagedRow = SessionRow & { id: Buffer }
/** What a batch reads (and locks) of a row before it writes: its version, whether it is live, whether its data is an object. */
export type LockedRow = RowDataPacket & { id: Buffer; version: unknown; live: unknown; is_object: unknown }
/** What a refused single write reads of a live row to classify it. */
export type ProbedRow = RowDataPacket & { version: unknown; is_object: unknown }
export type VersionRow = RowDataPacket & { id: Buffer; version: unknown }
/** What `findByPrincipal` reads of a row: everything but the data and the principal. */
export type PrincipalRow = RowDataPacket & RowMetadata & { id: Buffer }

/** What this file passes as statement parameters; arrays expand to lists in `IN (?)`. */
export type Param = string | number | null | Buffer | Param[]

export type SetOp = Extract<StorageOperation, { type: 'set' }>
export type Change = Extract<StorageOperation, { type: 'update' | 'remove' | 'touch' }>
export type Entry<T> = [index: number, op: T]

/**
 * The SQL of one table; `table` is already quoted. Statements that test liveness take `now` twice
 * where `LIVE` or `EXPIRED` is. `has`: which of the later columns the table has (see {@link Columns}).
 */
export function statements(table: string, has: Columns = ALL_COLUMNS) {
  const { issuer, principal } = has
  const optional = [issuer ? 'issuer' : '', principal ? 'principal' : ''].filter(Boolean)
  const metadata = `created_at, expires_at, absolute_expires_at, version${issuer ? ', issuer' : ''}`
  const columns = `CAST(data AS CHAR) AS data, ${metadata}${principal ? ', principal' : ''}`
  const insert = `INSERT INTO ${table} (id, data, created_at, expires_at, absolute_expires_at${optional.map((name) => `, ${name}`).join('')}, version) VALUES`
  // The columns a whole-record write replaces, for `setRow`'s values without the id.
  const replace = `data = ?, created_at = ?, expires_at = ?, absolute_expires_at = ?${optional.map((name) => `, ${name} = ?`).join('')}`
  const row = `(?, ?, ?, ?, ?${', ?'.repeat(optional.length)}, 1)`
  const rows = (count: number): string => Array(count).fill(row).join(', ')
  // A key change that also sets the principal (its bytes, or NULL), in the same statement.
  const setPrincipal = (changes: boolean): string => (principal && changes ? ', principal = ?' : '')
  const changeMany = (where: string): string =>
    `UPDATE JSON_TABLE(?, '$[*]' COLUMNS (
        id_hex VARCHAR(128) PATH '$.i', kind CHAR(1) PATH '$.k', key_path LONGTEXT PATH '$.p', new_value JSON PATH '$.v', deadline BIGINT PATH '$.e', if_version BIGINT PATH '$.w'${
          principal ? `, sets_principal INT PATH '$.q', principal_hex VARCHAR(1530) PATH '$.n'` : ''
        }
      )) AS b STRAIGHT_JOIN ${table} AS t ON t.id = UNHEX(b.id_hex)
      SET t.data = CASE b.kind WHEN 'u' THEN JSON_SET(t.data, b.key_path, JSON_EXTRACT(b.new_value, '$')) WHEN 'r' THEN JSON_REMOVE(t.data, b.key_path) ELSE t.data END,
        t.expires_at = b.deadline, t.version = IF(b.kind = 't', t.version, t.version + 1)${
          principal ? ', t.principal = IF(b.sets_principal = 1, UNHEX(b.principal_hex), t.principal)' : ''
        }${where}`
  return {
    issuer,
    principal,
    create: `CREATE TABLE IF NOT EXISTS ${table} (
      id VARBINARY(64) NOT NULL,
      data JSON NOT NULL,
      created_at BIGINT NOT NULL,
      expires_at BIGINT NOT NULL,
      absolute_expires_at BIGINT NULL,
      version INT UNSIGNED NOT NULL DEFAULT 1,
      ${ISSUER_COLUMN},
      ${PRINCIPAL_COLUMN},
      PRIMARY KEY (id),
      KEY expires_at (expires_at),
      KEY absolute_expires_at (absolute_expires_at),
      ${PRINCIPAL_INDEX}
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    /**
     * Whether the table has the `issuer` and `principal` columns and the principal index, 1 or 0
     * each (the table's database or `NULL` for the connection's, then its name, three times).
     */
    schema: `SELECT
      (SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = 'issuer') AS issuer,
      (SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = 'principal') AS principal,
      (SELECT COUNT(*) > 0 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND INDEX_NAME = 'principal') AS principal_index`,
    /** What brings a table made before them up to date: the missing parts, one `ALTER TABLE`. */
    alter: (missing: { issuer: boolean; principal: boolean; principalIndex: boolean }): string =>
      `ALTER TABLE ${table} ${[
        missing.issuer ? `ADD COLUMN ${ISSUER_COLUMN}` : '',
        missing.principal ? `ADD COLUMN ${PRINCIPAL_COLUMN}` : '',
        missing.principalIndex ? `ADD ${PRINCIPAL_INDEX}` : '',
      ]
        .filter(Boolean)
        .join(', ')}`,
    /** Reads no row, but fails when the table or one of its columns is missing: what `open()` checks. */
    check: `SELECT id, ${columns} FROM ${table} LIMIT 0`,
    get: `SELECT ${columns} FROM ${table} WHERE id = ? AND ${LIVE}`,
    /**
     * Unconditional sets, then `now` twice. The version is assigned first, so it reads the
     * replaced row's deadlines (MySQL assigns left to right; MariaDB's SIMULTANEOUS_ASSIGNMENT
     * reads old values anyway): the live row's version plus one, or 1 over an expired row. VALUES()
     * rather than a row alias: MariaDB has no `AS new` syntax.
     */
    upsert: (count: number) =>
      `${insert} ${rows(count)}
       ON DUPLICATE KEY UPDATE version = IF(${LIVE}, version + 1, 1), data = VALUES(data), created_at = VALUES(created_at),
       expires_at = VALUES(expires_at), absolute_expires_at = VALUES(absolute_expires_at)${optional.map((name) => `, ${name} = VALUES(${name})`).join('')}`,
    /** Sets with `ifVersion` 0 of ids that have no row: a row made meanwhile makes the statement fail (duplicate key) rather than be replaced. */
    insert: (count: number) => `${insert} ${rows(count)}`,
    /** A set with `ifVersion` 0 over an expired row (`setRow` without the id, then the id and `now` twice). */
    replaceExpired: `UPDATE ${table} SET ${replace}, version = 1 WHERE id = ? AND (${EXPIRED})`,
    /** A set with `ifVersion` v > 0 (`setRow` without the id, then the id, v and `now` twice). */
    replaceIf: `UPDATE ${table} SET ${replace}, version = version + 1 WHERE id = ? AND version = ? AND ${LIVE}`,
    // JSON_EXTRACT(?, '$') makes the parameter a JSON value, so a string stays a string rather than raw text.
    // `changesPrincipal`: the principal's bytes (or NULL) follow the deadline (only when the table has its column).
    update: (conditional: boolean, changesPrincipal = false) =>
      `UPDATE ${table} SET data = JSON_SET(data, ?, JSON_EXTRACT(?, '$')), expires_at = ?${setPrincipal(changesPrincipal)}, version = version + 1
      WHERE id = ? AND ${LIVE} AND ${DATA_IS_OBJECT}${conditional ? ' AND version = ?' : ''}`,
    remove: (conditional: boolean, changesPrincipal = false) =>
      `UPDATE ${table} SET data = JSON_REMOVE(data, ?), expires_at = ?${setPrincipal(changesPrincipal)}, version = version + 1
      WHERE id = ? AND ${LIVE} AND ${DATA_IS_OBJECT}${conditional ? ' AND version = ?' : ''}`,
    touch: `UPDATE ${table} SET expires_at = ? WHERE id = ? AND ${LIVE}`,
    deleteOne: `DELETE FROM ${table} WHERE id = ?`,
    /** A delete with `ifVersion` (the id, the version, `now` twice): only a live row at another version stays. */
    deleteIf: `DELETE FROM ${table} WHERE id = ? AND (version = ? OR ${EXPIRED})`,
    deleteMany: `DELETE FROM ${table} WHERE id IN (?)`,
    /** What a refused single write reads to tell "no live record" from "another version". */
    probe: `SELECT version, ${DATA_IS_OBJECT} AS is_object FROM ${table} WHERE id = ? AND ${LIVE}`,
    /** A batch round's read of its ids (`now` twice, then the ids): every row there is, locked until the transaction ends. */
    lockRows: `SELECT id, version, ${LIVE} AS live, ${DATA_IS_OBJECT} AS is_object FROM ${table} WHERE id IN (?) FOR UPDATE`,
    versions: `SELECT id, version FROM ${table} WHERE id IN (?) AND ${LIVE}`,
    // The batch's rows arrive as ONE JSON parameter read by JSON_TABLE and joined to the table by
    // primary key, so the server's work grows linearly with the rows (a CASE with one WHEN per row
    // grew with their square). Ids travel as hex and are compared after UNHEX, as bytes. The value
    // is the JSON fragment itself (a JSON column keeps it as JSON text) and JSON_EXTRACT(…, '$')
    // turns it into a JSON value, as in `update`. STRAIGHT_JOIN: read the batch rows first and look
    // each up by primary key, even when the table's statistics say it is small. A value nested
    // within two levels of the server's JSON depth limit fails the statement (the batch is then
    // applied one by one, and each operation gets the outcome `update` gives it). A touch keeps
    // the version. A row with `q` sets the principal to the bytes `n` holds in hex (none: NULL).
    changeMany: changeMany(''),
    /**
     * `changeMany` for key changes that all carry `ifVersion` (`w`), then `now` twice: only a
     * live row holding an object at that version changes, so the statement's matched rows (the
     * driver counts found rows) equal its rows exactly when every change applied.
     */
    changeManyIf: changeMany(` WHERE t.version = b.if_version AND ${LIVE} AND ${DATA_IS_OBJECT}`),
    /** The live rows of one principal (its bytes, then `now` twice), oldest first, through the principal index. */
    findByPrincipal: `SELECT id, ${metadata} FROM ${table} WHERE principal = ? AND ${LIVE} ORDER BY created_at, id`,
    count: `SELECT COUNT(*) AS count FROM ${table} WHERE ${LIVE}`,
    page: `SELECT id, ${columns} FROM ${table} WHERE id > ? AND ${LIVE} ORDER BY id LIMIT ?`,
    clearChunk: `DELETE FROM ${table} LIMIT ?`,
    cleanupChunk: `DELETE FROM ${table} WHERE ${EXPIRED} LIMIT ?`,
  }
}

/** The statements of one table. */
export type Statements = ReturnType<typeof statements>

/** Ids are compared as bytes: base64url ids that differ only by case are different rows. */
export function rowId(id: string): Buffer {
  return Buffer.from(id, 'utf8')
}

/**
 * A JSON path naming exactly one member, whatever the key holds (dots, quotes, `*`, `$`…):
 * a JSON string literal after `$.` is how MySQL and MariaDB quote a member name.
 */
export function jsonPath(key: string): string {
  return '$.' + JSON.stringify(key)
}

/**
 * One row of `changeMany`'s JSON parameter: `k` is `u` (update, `v` its value's JSON text), `r`
 * (remove) or `t` (touch); a key change that changes the principal has `q`, and `n` its bytes in
 * hex unless it clears it.
 */
export function changeRow(op: Change, valueText: string | undefined): string {
  const head = `{"i":"${rowId(op.id).toString('hex')}","e":${JSON.stringify(op.expiresAt)}`
  if (op.type === 'touch') return `${head},"k":"t"}`
  const version = op.ifVersion === undefined ? '' : `,"w":${op.ifVersion}`
  const path = JSON.stringify(jsonPath(op.key))
  const principal = op.principal === undefined ? '' : op.principal === null ? ',"q":1' : `,"q":1,"n":"${principalBytes(op.principal).toString('hex')}"`
  return op.type === 'update' ? `${head}${version},"k":"u","p":${path},"v":${valueText!}${principal}}` : `${head}${version},"k":"r","p":${path}${principal}}`
}

/** The values of one row of `upsert` or `insert` of `sql`: the id, the data's JSON text, the timestamps, the issuer and the principal (when the table has their columns). */
export function setRow(sql: Statements, { id, record }: SetOp, dataText: string): Param[] {
  const row: Param[] = [rowId(id), dataText, record.createdAt, record.expiresAt, record.absoluteExpiresAt ?? null]
  if (sql.issuer) row.push(record.issuer ?? null)
  if (sql.principal) row.push(record.principal == null ? null : principalBytes(record.principal))
  return row
}

/** How a principal is kept in its column, and looked up: its UTF-8 bytes. */
export function principalBytes(principal: string): Buffer {
  return Buffer.from(principal, 'utf8')
}

/** A row's fields for the kit's record parsing; SQL `NULL` is "no absolute deadline", "no issuer" and "no principal". */
export function rawRecord(row: RowMetadata, data: unknown): RawRecord {
  const { created_at: createdAt, expires_at: expiresAt, absolute_expires_at: absoluteExpiresAt, version, issuer } = row
  return { data, createdAt, expiresAt, absoluteExpiresAt, version, issuer, principal: row.principal?.toString('utf8') }
}

/** mysql2's error code (`ER_LOCK_DEADLOCK`), or `undefined` for an error that has none. */
export function codeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined
}

/**
 * Whether the server refused one statement (bad data, a failed constraint) on a connection
 * that is fine, so the operations can be applied one by one. Not when the transaction was
 * rolled back as a whole (a deadlock or serialization failure, SQLSTATE class 40; a lock wait
 * timeout), the table is missing, or the connection failed (SQLSTATE class 08, or no answer):
 * applying each operation would only meet the same condition again.
 */
export function isRefusedStatement(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { sqlState, fatal } = err as { sqlState?: unknown; fatal?: unknown }
  if (typeof sqlState !== 'string' || fatal === true || sqlState.startsWith('40') || sqlState.startsWith('08')) return false
  const code = codeOf(err)
  return code !== 'ER_LOCK_WAIT_TIMEOUT' && code !== 'ER_NO_SUCH_TABLE'
}
