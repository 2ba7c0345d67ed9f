import { createPool, type Pool, type PoolConnection, type PoolOptions, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise'
import {
  AbstractStorage,
  booleanOption,
  chunks,
  decodeValue,
  encodeData,
  encodeValue,
  invalidRecord,
  parseRecord,
  readRecord,
  storageError,
} from '../src/kit/index.js'
import type { AbstractStorageOptions, Batch, BatchOutcome, RawRecord, SessionRecord, StorageCapabilities, StorageOperation } from '../src/kit/index.js'

/**
 * Options of {@link MySQLStorage}. Give exactly one of `uri`, `pool` or `connection`.
 *
 * @example
 * ```ts
 * const options: MySQLStorageOptions = { uri: 'mysql://app:secret@db.internal:3306/app', table: 'sessions' }
 * ```
 */
export interface MySQLStorageOptions extends AbstractStorageOptions {
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

const OWNER = 'MySQLStorage'
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_$]{0,63})?$/
/** Rows deleted per statement by `cleanup` and `clear`, so no statement locks the whole table. */
const DELETE_CHUNK = 1000
/** Rows per multi-row statement of a batch, and the bytes of values they may carry (under the 16 MiB default `max_allowed_packet`). */
const BATCH_ROWS = 500
const BATCH_BYTES = 4 * 1024 * 1024
/** Rows fetched per page by `all`. */
const PAGE_ROWS = 500
/**
 * The kit's liveness rule (`isLive` of src/kit/liveness.ts) in SQL, for `now` passed twice: live while
 * now < expires_at and (no absolute deadline, or now < absolute_expires_at). SQL `NULL` is "no
 * absolute deadline". {@link EXPIRED} is its negation, for cleanup.
 */
const LIVE = 'expires_at > ? AND (absolute_expires_at IS NULL OR absolute_expires_at > ?)'
const EXPIRED = 'expires_at <= ? OR absolute_expires_at <= ?'
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

type PagedRow = SessionRow & { id: Buffer }
type LiveRow = RowDataPacket & { id: Buffer; is_object: unknown }

/** What this file passes as statement parameters; arrays expand to lists in `IN (?)`. */
type Param = string | number | null | Buffer | Param[]

type SetOp = Extract<StorageOperation, { type: 'set' }>
type Change = Extract<StorageOperation, { type: 'update' | 'remove' | 'touch' }>
type Entry<T> = [index: number, op: T]

/** A batch's transaction while it runs: outcomes count only once it is committed. */
interface Transaction {
  readonly connection: PoolConnection
  /** The JSON text of each set's data and each update's value, by operation index. */
  readonly texts: ReadonlyMap<number, string>
  readonly outcomes: Map<number, boolean>
  readonly now: number
}

/**
 * Keeps sessions in a MySQL or MariaDB table through `mysql2`. Each session is one row: a
 * case-sensitive binary id, the data as JSON, and its timestamps in epoch ms. `update` and
 * `remove` change one key inside the database (`JSON_SET`/`JSON_REMOVE`), so processes writing
 * different keys of one session all keep their writes; `touch` moves the deadline without
 * sending the data; a batch is one transaction. Expired rows (by the `now` option's clock) are
 * never returned; `cleanup()` deletes them in bounded chunks. Failures reject with
 * `SESSION_STORAGE_ERROR` (mysql2's error is the `cause`); the storage never retries: the
 * manager's write queue does.
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
export class MySQLStorage extends AbstractStorage {
  /** Batches, the operators' side, and a table every process of a cluster can share. */
  readonly capabilities: StorageCapabilities = { batch: true, admin: true, shared: true }
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

  constructor(options: MySQLStorageOptions) {
    super('mysql', options, OWNER)
    const given = (['uri', 'pool', 'connection'] as const).filter((name) => options[name] !== undefined)
    if (given.length !== 1) {
      const got = given.length > 1 ? `; got ${given.map((name) => `"${name}"`).join(' and ')}` : ''
      throw new TypeError(`${OWNER} needs exactly one of the options "uri", "pool" or "connection"${got}`)
    }
    const table = options.table ?? 'sessions'
    if (typeof table !== 'string' || !TABLE_NAME.test(table))
      throw new TypeError(`${OWNER} option "table" must be a name of letters, digits, "_" and "$" (optionally "database.table"), at most 64 characters each`)
    this.table = table
    this.#createTable = booleanOption(options.createTable, OWNER, 'createTable', true)
    this.#sql = statements(table.replace(/[^.]+/g, (part) => `\`${part}\``))
    if (options.pool !== undefined) {
      if (!isPromisePool(options.pool)) throw new TypeError(`${OWNER} option "pool" must be a pool from "mysql2/promise" (createPool), not a callback pool`)
      this.#pool = options.pool
    } else if (options.uri !== undefined) {
      if (typeof options.uri !== 'string' || !/^mysqls?:\/\//.test(options.uri))
        throw new TypeError(`${OWNER} option "uri" must be a string like "mysql://user:password@host:3306/database"`)
      this.#pool = createPool({ uri: options.uri })
    } else {
      if (typeof options.connection !== 'object' || options.connection === null)
        throw new TypeError(`${OWNER} option "connection" must be an object of mysql2 pool options`)
      this.#pool = createPool(options.connection)
    }
    this.#ownsPool = options.pool === undefined
  }

  /**
   * Apply the writes of many sessions in one transaction, in rounds (round k holds the k-th
   * operation of every session): sets as multi-row `INSERT … ON DUPLICATE KEY UPDATE`, deletes
   * as one `DELETE … IN`, touches and key changes as one locking read plus one `UPDATE` joined
   * to the rows passed as one JSON parameter (`JSON_TABLE`). Outcomes count only once the
   * transaction is committed: when it is rolled back (a deadlock, a lost connection), every
   * operation in it gets the error, and the write queue retries them. When the server refuses
   * one statement (a value its JSON cannot hold, an id over 64 bytes), the operations are
   * applied again one by one, so that one fails alone (with the later operations of its
   * session) and the others get their own outcomes.
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
  batch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    return this.applyBatch(operations)
  }

  protected override async _get(id: string, now: number): Promise<SessionRecord | undefined> {
    const [rows] = await this.#run(() => this.#pool.execute<SessionRow[]>(this.#sql.get, [rowId(id), now, now]))
    const row = rows[0]
    if (row === undefined) return undefined
    const data = decodeValue(row.data)
    if (data === undefined) throw invalidRecord(this.name, 'its data is not JSON', id)
    return readRecord(this.name, rawRecord(row, data), id)
  }

  /** One operation, one statement on the pool (no transaction). */
  protected override async _apply(op: StorageOperation, now: number): Promise<boolean> {
    const sql = this.#sql
    switch (op.type) {
      case 'set': {
        const row = setRow(op, encodeData(op.record.data))
        await this.#run(() => this.#pool.execute(sql.upsert(1), row))
        return true
      }
      case 'delete':
        await this.#run(() => this.#pool.execute(sql.deleteOne, [rowId(op.id)]))
        return true
      case 'update':
        return this.#changed(sql.update, [jsonPath(op.key), encodeValue(op.value, op.key), op.expiresAt, rowId(op.id), now, now])
      case 'remove':
        return this.#changed(sql.remove, [jsonPath(op.key), op.expiresAt, rowId(op.id), now, now])
      case 'touch':
        return this.#changed(sql.touch, [op.expiresAt, rowId(op.id), now, now])
    }
  }

  protected override async _write(batch: Batch, now: number): Promise<void> {
    // Values JSON cannot hold fail their operation (and the later ones of its session) before anything is sent.
    const texts = new Map<number, string>()
    for (const [index, op] of batch.entries()) {
      try {
        if (op.type === 'set') texts.set(index, encodeData(op.record.data))
        else if (op.type === 'update') texts.set(index, encodeValue(op.value, op.key))
      } catch (err) {
        batch.fail(index, err)
      }
    }
    if (batch.pendingCount === 0) return
    let committed: Map<number, boolean>
    try {
      committed = await this.#run(() => this.#transaction(batch, texts, now))
    } catch (err) {
      // Rolled back: nothing in it was applied. A statement the server refused is one write's
      // doing, so the batch is applied again one by one and only that write (and the later ones
      // of its session) fails; anything else fails every operation, for the write queue to retry.
      if (!isRefusedStatement(err)) return batch.failAll(storageError(this.name, 'write sessions', err))
      return batch.applyEach(async (op) => {
        try {
          return await this._apply(op, now)
        } catch (refused) {
          throw storageError(this.name, 'write a session', refused)
        }
      })
    }
    for (const [index, applied] of committed) batch.done(index, applied)
  }

  protected override async _length(now: number): Promise<number> {
    const [rows] = await this.#run(() => this.#pool.execute<RowDataPacket[]>(this.#sql.count, [now, now]))
    return Number(rows[0]?.['count'] ?? 0)
  }

  /** Pages of 500 rows in id order; rows that are not usable records are skipped. */
  protected override async *_all(now: number): AsyncIterable<[string, SessionRecord]> {
    let after: Buffer = Buffer.alloc(0)
    for (;;) {
      const [rows] = await this.#run(() => this.#pool.query<PagedRow[]>(this.#sql.page, [after, now, now, PAGE_ROWS]))
      for (const row of rows) {
        const record = parseRecord(rawRecord(row, decodeValue(row.data)))
        if (typeof record !== 'string') yield [row.id.toString('utf8'), record]
      }
      const last = rows.at(-1)
      if (last === undefined || rows.length < PAGE_ROWS) return
      after = last.id
    }
  }

  protected override async _clear(): Promise<void> {
    await this.#deleteInChunks(this.#sql.clearChunk, [])
  }

  protected override _cleanup(now: number): Promise<number> {
    return this.#deleteInChunks(this.#sql.cleanupChunk, [now, now])
  }

  /** Ends the pool if the storage made it; a pool passed in stays open. */
  protected override async _close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end().catch(() => undefined)
  }

  /** Run `work` once the table exists (when the storage creates it). */
  async #run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#createTable) {
      // One CREATE for all concurrent first calls; forgotten on failure, so the next call tries again.
      this.#ready ??= this.#pool.query(this.#sql.create).then(
        () => undefined,
        (err: unknown) => {
          this.#ready = undefined
          throw err
        },
      )
      await this.#ready
    }
    try {
      return await work()
    } catch (err) {
      // The table was dropped: the next call creates it again.
      if (codeOf(err) === 'ER_NO_SUCH_TABLE') this.#ready = undefined
      throw err
    }
  }

  async #changed(sql: string, params: Param[]): Promise<boolean> {
    const [result] = await this.#run(() => this.#pool.execute<ResultSetHeader>(sql, params))
    return result.affectedRows > 0
  }

  async #deleteInChunks(sql: string, params: Param[]): Promise<number> {
    let deleted = 0
    for (;;) {
      const [result] = await this.#run(() => this.#pool.query<ResultSetHeader>(sql, [...params, DELETE_CHUNK]))
      deleted += result.affectedRows
      if (result.affectedRows < DELETE_CHUNK) return deleted
    }
  }

  /** The pending operations of `batch` in one transaction; their outcomes once it is committed. */
  async #transaction(batch: Batch, texts: ReadonlyMap<number, string>, now: number): Promise<Map<number, boolean>> {
    const connection = await this.#pool.getConnection()
    let reusable = true
    try {
      await connection.query('START TRANSACTION')
      const tx: Transaction = { connection, texts, outcomes: new Map(), now }
      for (const round of batch.rounds()) await this.#applyRound(tx, round)
      await connection.query('COMMIT')
      return tx.outcomes
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
  async #applyRound(tx: Transaction, round: Array<Entry<StorageOperation>>): Promise<void> {
    const { connection, texts, outcomes } = tx
    const sets: Array<Entry<SetOp>> = []
    const deletes: Array<Entry<StorageOperation>> = []
    const changes: Array<Entry<Change>> = []
    for (const entry of round) {
      const [index, op] = entry
      if (op.type === 'set') sets.push([index, op])
      else if (op.type === 'delete') deletes.push(entry)
      else changes.push([index, op])
    }
    // Each row's parameters and SQL take about 128 bytes besides its JSON text.
    const bytes = ([index]: Entry<StorageOperation>): number => 128 + Buffer.byteLength(texts.get(index) ?? '')
    for (const chunk of chunks(sets, BATCH_ROWS, BATCH_BYTES, bytes)) {
      await connection.query(
        this.#sql.upsert(chunk.length),
        chunk.flatMap(([index, op]) => setRow(op, texts.get(index)!)),
      )
      for (const [index] of chunk) outcomes.set(index, true)
    }
    for (const chunk of chunks(deletes, BATCH_ROWS, BATCH_BYTES, bytes)) {
      await connection.query(this.#sql.deleteMany, [chunk.map(([, op]) => rowId(op.id))])
      for (const [index] of chunk) outcomes.set(index, true)
    }
    for (const chunk of chunks(changes, BATCH_ROWS, BATCH_BYTES, bytes)) await this.#applyChanges(tx, chunk)
  }

  /** Lock the live rows among `chunk`'s ids, then change them with one statement. */
  async #applyChanges({ connection, texts, outcomes, now }: Transaction, chunk: Array<Entry<Change>>): Promise<void> {
    const [rows] = await connection.query<LiveRow[]>(this.#sql.lockLive, [chunk.map(([, op]) => rowId(op.id)), now, now])
    const live = new Map(rows.map((row) => [row.id.toString('utf8'), Number(row.is_object) === 1]))
    const changed: string[] = []
    for (const [index, op] of chunk) {
      const isObject = live.get(op.id)
      // Key changes need the data to be an object, as `get` does; a touch needs only a live row.
      const applies = op.type === 'touch' ? isObject !== undefined : isObject === true
      outcomes.set(index, applies)
      if (applies) changed.push(changeRow(op, texts.get(index)))
    }
    if (changed.length > 0) await connection.query(this.#sql.changeMany, [`[${changed.join(',')}]`])
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
    cleanupChunk: `DELETE FROM ${table} WHERE ${EXPIRED} LIMIT ?`,
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

/** One row of `changeMany`'s JSON parameter: `k` is `u` (update, `v` its value's JSON text), `r` (remove) or `t` (touch). */
function changeRow(op: Change, valueText: string | undefined): string {
  const head = `{"i":"${rowId(op.id).toString('hex')}","e":${JSON.stringify(op.expiresAt)}`
  if (op.type === 'touch') return `${head},"k":"t"}`
  const path = JSON.stringify(jsonPath(op.key))
  return op.type === 'update' ? `${head},"k":"u","p":${path},"v":${valueText!}}` : `${head},"k":"r","p":${path}}`
}

function setRow({ id, record }: SetOp, dataText: string): Param[] {
  return [rowId(id), dataText, record.createdAt, record.expiresAt, record.absoluteExpiresAt ?? null]
}

/** A row's fields for the kit's record parsing; SQL `NULL` is "no absolute deadline". */
function rawRecord(row: SessionRow, data: unknown): RawRecord {
  return { data, createdAt: row.created_at, expiresAt: row.expires_at, absoluteExpiresAt: row.absolute_expires_at, version: row.version }
}

function isPromisePool(value: unknown): value is Pool {
  if (typeof value !== 'object' || value === null) return false
  const pool = value as Partial<Record<'execute' | 'query' | 'getConnection' | 'end' | 'promise', unknown>>
  // A callback pool from 'mysql2' has promise(); one from 'mysql2/promise' does not.
  return typeof pool.execute === 'function' && typeof pool.getConnection === 'function' && typeof pool.end === 'function' && pool.promise === undefined
}

/** mysql2's error code (`ER_LOCK_DEADLOCK`), or `undefined` for an error that has none. */
function codeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined
}

/**
 * Whether the server refused one statement (bad data, a failed constraint) on a connection
 * that is fine, so the operations can be applied one by one. Not when the transaction was
 * rolled back as a whole (a deadlock or serialization failure, SQLSTATE class 40; a lock wait
 * timeout), the table is missing, or the connection failed (SQLSTATE class 08, or no answer):
 * applying each operation would only meet the same condition again.
 */
function isRefusedStatement(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { sqlState, fatal } = err as { sqlState?: unknown; fatal?: unknown }
  if (typeof sqlState !== 'string' || fatal === true || sqlState.startsWith('40') || sqlState.startsWith('08')) return false
  const code = codeOf(err)
  return code !== 'ER_LOCK_WAIT_TIMEOUT' && code !== 'ER_NO_SUCH_TABLE'
}
