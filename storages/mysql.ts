import { createPool, type Pool, type PoolConnection, type PoolOptions, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise'
import { batchRounds } from '../src/kit/batch.js'
import { SessionError } from '../src/errors.js'
import type { BatchOutcome, JsonValue, SessionData, SessionRecord, SessionRecordInput, Storage, StorageOperation } from '../src/types.js'

/**
 * Options of {@link MySQLStorage}. Give exactly one of `uri`, `pool` or `connection`.
 *
 * @example
 * ```ts
 * const options: MySQLStorageOptions = { uri: 'mysql://app:secret@db.internal:3306/app', table: 'sessions' }
 * ```
 */
export interface MySQLStorageOptions {
  /** A connection URI, e.g. `mysql://user:password@host:3306/database`. The storage makes (and closes) its pool. */
  uri?: string
  /** A `mysql2/promise` pool you own: the storage uses it and never ends it. */
  pool?: Pool
  /** `mysql2` pool options (host, user, password, database, …). The storage makes (and closes) its pool. */
  connection?: PoolOptions
  /** Table name: letters, digits, `_` and `$`, optionally `database.table`. Default `'sessions'`. */
  table?: string
  /** Create the table on first use when it is missing. Default `true`. */
  createTable?: boolean
}

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_$]{0,63})?$/
/** Rows deleted per statement by `cleanup` and `clear`, so no statement locks the whole table. */
const DELETE_CHUNK = 1000
/** Rows per multi-row statement of a batch, and the bytes of values they may carry (under the 16 MiB default `max_allowed_packet`). */
const BATCH_ROWS = 500
const BATCH_BYTES = 4 * 1024 * 1024
/** Rows fetched per page by `all`. */
const PAGE_ROWS = 500
/** A batch transaction chosen as a deadlock victim is replayed at most this many times in all. */
const TRANSACTION_ATTEMPTS = 3
const LIVE = 'expires_at > ? AND (absolute_expires_at IS NULL OR absolute_expires_at > ?)'
/** Whether `data` holds a JSON object; JSON_VALID first, since JSON_TYPE of invalid text is an error in strict mode. */
const DATA_IS_OBJECT = "(CASE WHEN JSON_VALID(data) THEN JSON_TYPE(data) END) = 'OBJECT'"
const COLUMNS = 'CAST(data AS CHAR) AS data, created_at, expires_at, absolute_expires_at, version'

interface SessionRow extends RowDataPacket {
  data: unknown
  created_at: unknown
  expires_at: unknown
  absolute_expires_at: unknown
  version: unknown
}

interface PagedRow extends SessionRow {
  id: Buffer
}

interface LiveRow extends RowDataPacket {
  id: Buffer
  is_object: unknown
}

/** What this file passes as statement parameters; arrays expand to lists in `IN (?)`. */
type Param = string | number | null | Buffer | Param[]

type Update = Extract<StorageOperation, { type: 'update' | 'remove' }>
type Touch = Extract<StorageOperation, { type: 'touch' }>

/**
 * Keeps sessions in a MySQL or MariaDB table through `mysql2`. Each session is one row: a
 * case-sensitive binary id, the data as JSON, and its timestamps in epoch ms. `update` and
 * `remove` change one key inside the database (`JSON_SET`/`JSON_REMOVE`), so processes writing
 * different keys of one session all keep their writes; `touch` moves the deadline without
 * sending the data; a batch is one transaction. Expired rows are never returned; `cleanup()`
 * deletes them in bounded chunks.
 *
 * @example
 * ```ts
 * import { SessionManager } from 'caching-session-manager'
 * import { MySQLStorage } from 'caching-session-manager/storages/mysql'
 *
 * const storage = new MySQLStorage({ uri: process.env.MYSQL_URL!, table: 'sessions' })
 * const manager = new SessionManager({ storage })
 * setInterval(() => storage.cleanup().catch(console.error), 3_600_000).unref()
 * ```
 */
export class MySQLStorage implements Storage {
  /**
   * `'mysql'`, the name used in error messages.
   *
   * @example
   * ```ts
   * new MySQLStorage({ uri }).name // 'mysql'
   * ```
   */
  readonly name = 'mysql'
  /**
   * The table in use, as given (unquoted).
   *
   * @example
   * ```ts
   * new MySQLStorage({ uri, table: 'app_sessions' }).table // 'app_sessions'
   * ```
   */
  readonly table: string
  readonly #pool: Pool
  readonly #ownsPool: boolean
  readonly #createTable: boolean
  readonly #sql: ReturnType<typeof statements>
  #ready: Promise<void> | undefined
  #closing: Promise<void> | undefined

  constructor(options: MySQLStorageOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('MySQLStorage options must be an object with "uri", "pool" or "connection"')
    const given = (['uri', 'pool', 'connection'] as const).filter((name) => options[name] !== undefined)
    if (given.length !== 1)
      throw new TypeError(
        `MySQLStorage needs exactly one of the options "uri", "pool" or "connection"${given.length > 1 ? `; got ${given.map((name) => `"${name}"`).join(' and ')}` : ''}`,
      )
    const table = options.table ?? 'sessions'
    if (typeof table !== 'string' || !TABLE_NAME.test(table))
      throw new TypeError(
        'MySQLStorage option "table" must be a name of letters, digits, "_" and "$" (optionally "database.table"), at most 64 characters each',
      )
    if (options.createTable !== undefined && typeof options.createTable !== 'boolean')
      throw new TypeError('MySQLStorage option "createTable" must be a boolean')
    this.table = table
    this.#createTable = options.createTable ?? true
    this.#sql = statements(
      table
        .split('.')
        .map((part) => `\`${part}\``)
        .join('.'),
    )
    if (options.pool !== undefined) {
      if (!isPromisePool(options.pool)) throw new TypeError('MySQLStorage option "pool" must be a pool from "mysql2/promise" (createPool), not a callback pool')
      this.#pool = options.pool
      this.#ownsPool = false
    } else if (options.uri !== undefined) {
      if (typeof options.uri !== 'string' || !/^mysqls?:\/\//.test(options.uri))
        throw new TypeError('MySQLStorage option "uri" must be a string like "mysql://user:password@host:3306/database"')
      this.#pool = createPool({ uri: options.uri })
      this.#ownsPool = true
    } else {
      if (typeof options.connection !== 'object' || options.connection === null)
        throw new TypeError('MySQLStorage option "connection" must be an object of mysql2 pool options')
      this.#pool = createPool(options.connection)
      this.#ownsPool = true
    }
  }

  /**
   * The live record of `id`, or `undefined` when there is none (missing or expired). A row whose
   * data is not a JSON object or whose timestamps are missing rejects with `SESSION_INVALID_RECORD`.
   *
   * @example
   * ```ts
   * const record = await storage.get(id) // { data, createdAt, expiresAt, version } or undefined
   * ```
   */
  async get(id: string): Promise<SessionRecord | undefined> {
    const now = Date.now()
    const [rows] = await this.#run('get', () => this.#pool.execute<SessionRow[]>(this.#sql.get, [rowId(id), now, now]))
    const row = rows[0]
    return row === undefined ? undefined : this.#toRecord(row)
  }

  /**
   * Create or replace the whole record of `id`; the version goes up by one.
   *
   * @example
   * ```ts
   * await storage.set(id, { data: { user: 'ada' }, createdAt: Date.now(), expiresAt: Date.now() + 3_600_000 })
   * ```
   */
  async set(id: string, record: SessionRecordInput): Promise<void> {
    await this.#run('set', () => this.#pool.execute(this.#sql.upsert(1), setRow(id, record)))
  }

  /**
   * Set one key of a live record inside the database (`JSON_SET`) and move its idle deadline.
   * Resolves `false` when there is no live record.
   *
   * @example
   * ```ts
   * await storage.update(id, 'cart', { items: 3 }, Date.now() + 3_600_000) // true
   * ```
   */
  async update(id: string, key: string, value: JsonValue, expiresAt: number): Promise<boolean> {
    const now = Date.now()
    const [result] = await this.#run('update', () =>
      this.#pool.execute<ResultSetHeader>(this.#sql.update, [jsonPath(key), JSON.stringify(value), expiresAt, rowId(id), now, now]),
    )
    return result.affectedRows > 0
  }

  /**
   * Remove one key of a live record inside the database (`JSON_REMOVE`) and move its idle
   * deadline. Resolves `false` when there is no live record.
   *
   * @example
   * ```ts
   * await storage.remove(id, 'cart', Date.now() + 3_600_000) // true
   * ```
   */
  async remove(id: string, key: string, expiresAt: number): Promise<boolean> {
    const now = Date.now()
    const [result] = await this.#run('remove', () => this.#pool.execute<ResultSetHeader>(this.#sql.remove, [jsonPath(key), expiresAt, rowId(id), now, now]))
    return result.affectedRows > 0
  }

  /**
   * Delete the row of `id`; deleting a missing one succeeds.
   *
   * @example
   * ```ts
   * await storage.delete(id)
   * ```
   */
  async delete(id: string): Promise<void> {
    await this.#run('delete', () => this.#pool.execute(this.#sql.deleteOne, [rowId(id)]))
  }

  /**
   * Move the idle deadline of a live record; the data is neither read nor written.
   * Resolves `false` when there is no live record.
   *
   * @example
   * ```ts
   * await storage.touch(id, Date.now() + 3_600_000) // true
   * ```
   */
  async touch(id: string, expiresAt: number): Promise<boolean> {
    const now = Date.now()
    const [result] = await this.#run('touch', () => this.#pool.execute<ResultSetHeader>(this.#sql.touch, [expiresAt, rowId(id), now, now]))
    return result.affectedRows > 0
  }

  /**
   * Apply the writes of many sessions in one transaction: whole-record sets as multi-row
   * `INSERT … ON DUPLICATE KEY UPDATE`, deletes as one `DELETE … IN`, touches and key changes
   * as one locking read plus one `UPDATE` joined to the rows passed as one JSON parameter
   * (`JSON_TABLE`). Operations on the same id apply in array
   * order. When the server refuses one operation (a value its JSON cannot hold, say), the
   * transaction is rolled back and the operations are applied again one by one, so that one
   * fails alone (with the later operations of its id) and the others get their own outcomes.
   * When the database cannot be reached, every operation's outcome is that error.
   *
   * @example
   * ```ts
   * const outcomes = await storage.batch([
   *   { type: 'set', id: a, record },
   *   { type: 'update', id: b, key: 'views', value: 2, expiresAt },
   *   { type: 'touch', id: c, expiresAt },
   * ]) // [true, true, false] when c has no live record
   * ```
   */
  async batch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    if (operations.length === 0) return []
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#run('batch', () => this.#transaction(operations))
      } catch (err) {
        if (attempt < TRANSACTION_ATTEMPTS && isDeadlock(err)) continue
        // The batch holds the writes of many sessions: one the server refuses must not fail the others.
        if (!isDeadlock(err) && isRefusedStatement(err)) return this.#oneByOne(operations)
        const error = err instanceof Error ? err : new Error(String(err))
        return operations.map(() => error)
      }
    }
  }

  /**
   * Number of live rows.
   *
   * @example
   * ```ts
   * console.log(`${await storage.length()} live sessions`)
   * ```
   */
  async length(): Promise<number> {
    const now = Date.now()
    const [rows] = await this.#run('length', () => this.#pool.execute<RowDataPacket[]>(this.#sql.count, [now, now]))
    return Number(rows[0]?.['count'] ?? 0)
  }

  /**
   * Every live record with its id, read in pages of 500 rows in id order. Rows that are not
   * usable records are skipped.
   *
   * @example
   * ```ts
   * for await (const [id, record] of storage.all()) console.log(id, record.data)
   * ```
   */
  async *all(): AsyncIterable<[string, SessionRecord]> {
    let after: Buffer = Buffer.alloc(0)
    for (;;) {
      const now = Date.now()
      const [rows] = await this.#run('all', () => this.#pool.query<PagedRow[]>(this.#sql.page, [after, now, now, PAGE_ROWS]))
      for (const row of rows) {
        let record: SessionRecord
        try {
          record = this.#toRecord(row)
        } catch {
          continue
        }
        yield [row.id.toString('utf8'), record]
      }
      const last = rows.at(-1)
      if (last === undefined || rows.length < PAGE_ROWS) return
      after = last.id
    }
  }

  /**
   * Delete every row, 1000 per statement.
   *
   * @example
   * ```ts
   * await storage.clear()
   * ```
   */
  async clear(): Promise<void> {
    await this.#deleteInChunks('clear', this.#sql.clearChunk, [])
  }

  /**
   * Delete rows expired at `now` (default: the current time), 1000 per statement; resolves to
   * how many were deleted.
   *
   * @example
   * ```ts
   * const removed = await storage.cleanup()
   * ```
   */
  cleanup(now: number = Date.now()): Promise<number> {
    return this.#deleteInChunks('cleanup', this.#sql.cleanupChunk, [now, now])
  }

  /**
   * Release the pool if the storage made it (a pool passed in stays open). Idempotent; later
   * calls reject.
   *
   * @example
   * ```ts
   * await storage.close()
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= this.#ownsPool ? this.#pool.end().catch(() => undefined) : Promise.resolve()
    return this.#closing
  }

  /**
   * Apply `operations` one at a time, in order; once one fails, the later operations of its id
   * get its error without being sent (they were meant to apply after it).
   */
  async #oneByOne(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    const failed = new Map<string, Error>()
    const outcomes: BatchOutcome[] = []
    for (const op of operations) {
      const earlier = failed.get(op.id)
      if (earlier !== undefined) {
        outcomes.push(earlier)
        continue
      }
      try {
        outcomes.push(await this.#applyOne(op))
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err))
        failed.set(op.id, error)
        outcomes.push(error)
      }
    }
    return outcomes
  }

  #applyOne(op: StorageOperation): Promise<boolean> {
    switch (op.type) {
      case 'set':
        return this.set(op.id, op.record).then(() => true)
      case 'update':
        return this.update(op.id, op.key, op.value, op.expiresAt)
      case 'remove':
        return this.remove(op.id, op.key, op.expiresAt)
      case 'delete':
        return this.delete(op.id).then(() => true)
      case 'touch':
        return this.touch(op.id, op.expiresAt)
    }
  }

  /** Run `work` once the table exists, turning any failure into an error that names this storage. */
  async #run<T>(action: string, work: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) throw new Error(`mysql storage: ${action} failed: the storage is closed`)
    try {
      await this.#ensureTable()
      return await work()
    } catch (err) {
      throw storageError(action, err)
    }
  }

  #ensureTable(): Promise<void> {
    if (!this.#createTable) return Promise.resolve()
    // One CREATE for all concurrent first calls; forgotten on failure so a later call retries.
    this.#ready ??= this.#pool.query(this.#sql.create).then(
      () => undefined,
      (err: unknown) => {
        this.#ready = undefined
        throw err
      },
    )
    return this.#ready
  }

  async #deleteInChunks(action: string, sql: string, params: Param[]): Promise<number> {
    let deleted = 0
    for (;;) {
      const [result] = await this.#run(action, () => this.#pool.query<ResultSetHeader>(sql, [...params, DELETE_CHUNK]))
      deleted += result.affectedRows
      if (result.affectedRows < DELETE_CHUNK) return deleted
    }
  }

  async #transaction(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    const connection = await this.#pool.getConnection()
    let reusable = true
    try {
      await connection.query('START TRANSACTION')
      const outcomes: BatchOutcome[] = operations.map(() => false)
      const now = Date.now()
      for (const round of batchRounds(operations)) await this.#applyRound(connection, round, outcomes, now)
      await connection.query('COMMIT')
      return outcomes
    } catch (err) {
      await connection.query('ROLLBACK').catch(() => {
        reusable = false
      })
      throw err
    } finally {
      if (reusable) connection.release()
      else connection.destroy()
    }
  }

  /** One round holds at most one operation per id, so its statements may run in any order. */
  async #applyRound(connection: PoolConnection, round: Array<[number, StorageOperation]>, outcomes: BatchOutcome[], now: number): Promise<void> {
    const sets: Array<[number, Extract<StorageOperation, { type: 'set' }>]> = []
    const deletes: number[] = []
    const conditional: Array<[number, Update | Touch]> = []
    const ids = new Map<number, string>()
    for (const [index, op] of round) {
      ids.set(index, op.id)
      if (op.type === 'set') sets.push([index, op])
      else if (op.type === 'delete') deletes.push(index)
      else conditional.push([index, op])
    }
    for (const chunk of chunks(sets, ([, op]) => Buffer.byteLength(JSON.stringify(op.record.data)))) {
      await connection.query(
        this.#sql.upsert(chunk.length),
        chunk.flatMap(([, op]) => setRow(op.id, op.record)),
      )
      for (const [index] of chunk) outcomes[index] = true
    }
    for (const chunk of chunks(deletes, () => 64)) {
      await connection.query(this.#sql.deleteMany, [chunk.map((index) => rowId(ids.get(index)!))])
      for (const index of chunk) outcomes[index] = true
    }
    for (const chunk of chunks(conditional, ([, op]) => (op.type === 'update' ? Buffer.byteLength(JSON.stringify(op.value)) : 64))) {
      await this.#applyConditional(connection, chunk, outcomes, now)
    }
  }

  /** Lock the live rows among `chunk`'s ids, then change them with one statement per kind. */
  async #applyConditional(connection: PoolConnection, chunk: Array<[number, Update | Touch]>, outcomes: BatchOutcome[], now: number): Promise<void> {
    const [rows] = await connection.query<LiveRow[]>(this.#sql.lockLive, [chunk.map(([, op]) => rowId(op.id)), now, now])
    const live = new Map(rows.map((row) => [row.id.toString('utf8'), Number(row.is_object) === 1]))
    const changes: Array<Update | Touch> = []
    for (const [index, op] of chunk) {
      const isObject = live.get(op.id)
      // Key changes need the data to be an object, as `get` does; a touch needs only a live row.
      const applies = op.type === 'touch' ? isObject !== undefined : isObject === true
      outcomes[index] = applies
      if (applies) changes.push(op)
    }
    if (changes.length > 0) await connection.query(this.#sql.changeMany, [JSON.stringify(changes.map(changeRow))])
  }

  #toRecord(row: SessionRow): SessionRecord {
    const createdAt = toNumber(row.created_at)
    const expiresAt = toNumber(row.expires_at)
    const absolute = row.absolute_expires_at === null ? undefined : toNumber(row.absolute_expires_at)
    const version = toNumber(row.version)
    const data = parseJson(row.data)
    let problem: string | undefined
    if (data === undefined) problem = 'its data is not JSON'
    else if (!isPlainObject(data)) problem = 'its data is not a JSON object'
    else if (!Number.isFinite(createdAt) || !Number.isFinite(expiresAt) || (absolute !== undefined && !Number.isFinite(absolute)))
      problem = 'its timestamps are missing'
    else if (!Number.isInteger(version)) problem = 'its version is missing'
    if (problem !== undefined) {
      throw new SessionError('SESSION_INVALID_RECORD', `mysql storage: a row of table ${this.table} is not a usable session record (${problem})`)
    }
    const record: SessionRecord = { data: data as SessionData, createdAt, expiresAt, version }
    if (absolute !== undefined) record.absoluteExpiresAt = absolute
    return record
  }
}

/** The SQL of one table; `table` is already quoted. */
function statements(table: string) {
  return {
    create: `CREATE TABLE IF NOT EXISTS ${table} (
      id VARBINARY(64) NOT NULL,
      data JSON NOT NULL,
      created_at BIGINT NOT NULL,
      expires_at BIGINT NOT NULL,
      absolute_expires_at BIGINT NULL,
      version INT UNSIGNED NOT NULL DEFAULT 1,
      PRIMARY KEY (id),
      KEY expires_at (expires_at),
      KEY absolute_expires_at (absolute_expires_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    get: `SELECT ${COLUMNS} FROM ${table} WHERE id = ? AND ${LIVE}`,
    // VALUES() rather than a row alias: MariaDB has no `AS new` syntax.
    upsert: (rows: number) =>
      `INSERT INTO ${table} (id, data, created_at, expires_at, absolute_expires_at, version) VALUES ${Array(rows).fill('(?, ?, ?, ?, ?, 1)').join(', ')}
       ON DUPLICATE KEY UPDATE data = VALUES(data), created_at = VALUES(created_at), expires_at = VALUES(expires_at),
       absolute_expires_at = VALUES(absolute_expires_at), version = version + 1`,
    // JSON_EXTRACT(?, '$') makes the parameter a JSON value, so a string stays a string rather than raw text.
    update: `UPDATE ${table} SET data = JSON_SET(data, ?, JSON_EXTRACT(?, '$')), expires_at = ?, version = version + 1
      WHERE id = ? AND ${LIVE} AND ${DATA_IS_OBJECT}`,
    remove: `UPDATE ${table} SET data = JSON_REMOVE(data, ?), expires_at = ?, version = version + 1
      WHERE id = ? AND ${LIVE} AND ${DATA_IS_OBJECT}`,
    touch: `UPDATE ${table} SET expires_at = ?, version = version + 1 WHERE id = ? AND ${LIVE}`,
    deleteOne: `DELETE FROM ${table} WHERE id = ?`,
    deleteMany: `DELETE FROM ${table} WHERE id IN (?)`,
    lockLive: `SELECT id, ${DATA_IS_OBJECT} AS is_object FROM ${table} WHERE id IN (?) AND ${LIVE} FOR UPDATE`,
    // The batch's rows arrive as ONE JSON parameter read by JSON_TABLE and joined to the table by
    // primary key, so the server's work grows linearly with the rows (a CASE with one WHEN per row
    // grew with their square). Ids travel as hex and are compared after UNHEX, as bytes. The value
    // is the JSON fragment itself (a JSON column keeps it as JSON text) and JSON_EXTRACT(…, '$')
    // turns it into a JSON value, as in `update`. STRAIGHT_JOIN: read the batch rows first and look
    // each up by primary key, even when the table's statistics say it is small. A value nested
    // within two levels of the server's JSON depth limit fails the statement (the batch is then
    // applied one by one, and each operation gets the outcome `update` gives it).
    changeMany: `UPDATE JSON_TABLE(?, '$[*]' COLUMNS (
        id_hex VARCHAR(128) PATH '$.i', kind CHAR(1) PATH '$.k', key_path LONGTEXT PATH '$.p', new_value JSON PATH '$.v', deadline BIGINT PATH '$.e'
      )) AS b STRAIGHT_JOIN ${table} AS t ON t.id = UNHEX(b.id_hex)
      SET t.data = CASE b.kind WHEN 'u' THEN JSON_SET(t.data, b.key_path, JSON_EXTRACT(b.new_value, '$')) WHEN 'r' THEN JSON_REMOVE(t.data, b.key_path) ELSE t.data END,
        t.expires_at = b.deadline, t.version = t.version + 1`,
    count: `SELECT COUNT(*) AS count FROM ${table} WHERE ${LIVE}`,
    page: `SELECT id, ${COLUMNS} FROM ${table} WHERE id > ? AND ${LIVE} ORDER BY id LIMIT ?`,
    clearChunk: `DELETE FROM ${table} LIMIT ?`,
    cleanupChunk: `DELETE FROM ${table} WHERE expires_at <= ? OR absolute_expires_at <= ? LIMIT ?`,
  }
}

/** Ids are compared as bytes: base64url ids that differ only by case are different rows. */
function rowId(id: string): Buffer {
  return Buffer.from(id, 'utf8')
}

/**
 * A JSON path naming exactly one member, whatever the key holds (dots, quotes, `*`, `$`…):
 * a JSON string literal after `$.` is how MySQL and MariaDB quote a member name.
 */
function jsonPath(key: string): string {
  return '$.' + JSON.stringify(key)
}

/** One row of `changeMany`'s JSON parameter: `k` is `u` (update), `r` (remove) or `t` (touch). */
function changeRow(op: Update | Touch): { i: string; k: 'u' | 'r' | 't'; p?: string; v?: JsonValue; e: number } {
  const i = rowId(op.id).toString('hex')
  switch (op.type) {
    case 'update':
      return { i, k: 'u', p: jsonPath(op.key), v: op.value, e: op.expiresAt }
    case 'remove':
      return { i, k: 'r', p: jsonPath(op.key), e: op.expiresAt }
    case 'touch':
      return { i, k: 't', e: op.expiresAt }
  }
}

function setRow(id: string, record: SessionRecordInput): Param[] {
  return [rowId(id), JSON.stringify(record.data), record.createdAt, record.expiresAt, record.absoluteExpiresAt ?? null]
}

/** Split `items` into chunks of at most {@link BATCH_ROWS} items and about {@link BATCH_BYTES} bytes. */
function chunks<T>(items: readonly T[], bytesOf: (item: T) => number): T[][] {
  const result: T[][] = []
  let current: T[] = []
  let bytes = 0
  for (const item of items) {
    const size = bytesOf(item) + 128
    if (current.length > 0 && (current.length >= BATCH_ROWS || bytes + size > BATCH_BYTES)) {
      result.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += size
  }
  if (current.length > 0) result.push(current)
  return result
}

/** BIGINT columns arrive as numbers, or as strings from pools set to `bigNumberStrings`. */
function toNumber(value: unknown): number {
  if (typeof value === 'number') return value
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value)
  return Number.NaN
}

/** The parsed data, or `undefined` when it is not JSON text. */
function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isPromisePool(value: unknown): value is Pool {
  if (typeof value !== 'object' || value === null) return false
  const pool = value as Partial<Record<'execute' | 'query' | 'getConnection' | 'end' | 'promise', unknown>>
  // A callback pool from 'mysql2' has promise(); one from 'mysql2/promise' does not.
  return typeof pool.execute === 'function' && typeof pool.getConnection === 'function' && typeof pool.end === 'function' && pool.promise === undefined
}

function isDeadlock(err: unknown): boolean {
  const cause = err instanceof Error && err.cause !== undefined ? err.cause : err
  const code = (cause as { code?: unknown } | null)?.code
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT'
}

/**
 * Whether the server answered a statement with an error (bad data, a failed constraint): the
 * connection is fine, so the operations can be applied one by one. A lost or refused
 * connection is not such an error: trying each operation would only wait for it again.
 */
function isRefusedStatement(err: unknown): boolean {
  const cause = (err instanceof Error && err.cause !== undefined ? err.cause : err) as { sqlState?: unknown; fatal?: unknown } | null
  return typeof cause?.sqlState === 'string' && cause.fatal !== true
}

function storageError(action: string, err: unknown): Error {
  if (err instanceof SessionError) return err
  if (err instanceof Error && err.message.startsWith('mysql storage: ')) return err
  const reason = err instanceof Error ? err.message || (err as { code?: string }).code || err.name : String(err)
  return new Error(`mysql storage: ${action} failed: ${reason}`, { cause: err })
}
