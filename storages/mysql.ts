import { createPool, type Pool, type PoolOptions, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise'
import {
  AbstractStorage,
  booleanOption,
  chunks,
  decodeValue,
  encodeData,
  encodeValue,
  invalidRecord,
  knownOptionsCheck,
  optionNames,
  optionsObject,
  parseRecord,
  principalSession,
  readRecord,
  refusedWrite,
  storageError,
  unsupported,
} from '../src/kit/index.js'
import type {
  AbstractStorageOptions,
  Batch,
  BatchOutcome,
  PrincipalSession,
  SessionRecord,
  StorageCapabilities,
  StorageOperation,
  WriteConflict,
} from '../src/kit/index.js'
import { checkSchema } from './mysql/schema.js'
import {
  codeOf,
  isRefusedStatement,
  jsonPath,
  principalBytes,
  rawRecord,
  rowId,
  setRow,
  statements,
  type PagedRow,
  type Param,
  type PrincipalRow,
  type ProbedRow,
  type SessionRow,
  type Statements,
  type VersionRow,
} from './mysql/statements.js'
import { applyInTransaction } from './mysql/transaction.js'

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
const KNOWN = optionNames<MySQLStorageOptions>({ uri: true, pool: true, connection: true, table: true, createTable: true, now: true })
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_$]{0,63})?$/
/** Rows deleted per statement by `cleanup` and `clear`, so no statement locks the whole table. */
const DELETE_CHUNK = 1000
/** Rows fetched per page by `all`. */
const PAGE_ROWS = 500
/** Ids per statement of `versions`. */
const VERSION_IDS = 1000

/** Deepest session value MySQL and MariaDB keep in a record's JSON data (see {@link MySQLStorage.capabilities}). */
export const MYSQL_MAX_DEPTH = 30

/**
 * Keeps sessions in a MySQL or MariaDB table through `mysql2`. Each session is one row: a
 * case-sensitive binary id, the data as JSON, and its timestamps in epoch ms. `update` and
 * `remove` change one key inside the database (`JSON_SET`/`JSON_REMOVE`), so processes writing
 * different keys of one session all keep their writes; `touch` moves the deadline without
 * sending the data (nor changing the version); a batch is one transaction. A conditional write
 * (`ifVersion`) carries its condition in its statement (`… WHERE version = ?`), so two
 * processes writing against the same version cannot both apply; when the statement changes no
 * row, one read tells "no live record" from "another version". `versions(ids)` is one
 * `SELECT id, version … WHERE id IN (…)` per 1000 ids. Each row's principal is an indexed
 * `principal` column that every write of the row sets in its own statement, so
 * `findByPrincipal` is one `SELECT … WHERE principal = ?` on that index. Expired rows (by the `now` option's
 * clock) are never returned; `cleanup()` deletes them in bounded chunks. Failures reject with
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
  /**
   * Batches, the operators' side, a table every process of a cluster can share, and the
   * principal index. Its limits are MariaDB's and MySQL's: a JSON document nests at most 32
   * deep, counted so that a record's data holds values 30 deep (measured on MariaDB 10.11:
   * depth 31 fails every write), and the server cannot keep a lone surrogate (its text is
   * UTF-8), in a key or a value.
   */
  readonly capabilities: StorageCapabilities = {
    batch: true,
    admin: true,
    shared: true,
    principals: true,
    limits: { maxDepth: MYSQL_MAX_DEPTH, wellFormedKeys: true, wellFormedValues: true },
  }
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
  readonly #quoted: string
  /** The statements for the table as the schema check found it (with or without its `issuer` and `principal` columns). */
  #sql: Statements
  #ready: Promise<void> | undefined

  constructor(options: MySQLStorageOptions) {
    knownOptionsCheck(optionsObject(options, OWNER), OWNER, KNOWN)
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
    this.#quoted = table.replace(/[^.]+/g, (part) => `\`${part}\``)
    this.#sql = statements(this.#quoted)
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
   * as one `DELETE … IN`, touches and key changes as one `UPDATE` joined to the rows passed as
   * one JSON parameter (`JSON_TABLE`). Touches, key changes and every conditional operation
   * first lock the rows of their ids with one read per round, which decides each one's outcome
   * (applied, `false`, `'conflict'`): no statement per operation. Once an operation conflicts,
   * the later ones of its session report `'conflict'` unapplied. Outcomes count only once the
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

  /** Connect, create the table when the storage creates it, and read none of its rows: a missing table or column fails here. */
  protected override async _check(): Promise<void> {
    await this.#run(() => this.#pool.query(this.#sql.check))
  }

  protected override async _get(id: string, now: number): Promise<SessionRecord | undefined> {
    const [rows] = await this.#run(() => this.#pool.execute<SessionRow[]>(this.#sql.get, [rowId(id), now, now]))
    const row = rows[0]
    if (row === undefined) return undefined
    const data = decodeValue(row.data)
    if (data === undefined) throw invalidRecord(this.name, 'its data is not JSON', id)
    return readRecord(this.name, rawRecord(row, data), id)
  }

  /**
   * One operation, one statement on the pool (no transaction); a conditional one carries its
   * condition (`version = ?`) in the statement, and when it changes nothing one read tells why.
   */
  protected override async _apply(op: StorageOperation, now: number): Promise<boolean | WriteConflict> {
    await this.#schema()
    const sql = this.#sql
    const id = rowId(op.id)
    switch (op.type) {
      case 'set': {
        const row = setRow(sql, op, encodeData(op.record.data))
        if (op.ifVersion === undefined) {
          await this.#run(() => this.#pool.execute(sql.upsert(1), [...row, now, now]))
          return true
        }
        if (op.ifVersion > 0) return (await this.#changed(sql.replaceIf, [...row.slice(1), id, op.ifVersion, now, now])) || 'conflict'
        try {
          await this.#run(() => this.#pool.execute(sql.insert(1), row))
          return true
        } catch (err) {
          if (codeOf(err) !== 'ER_DUP_ENTRY') throw err
        }
        return (await this.#changed(sql.replaceExpired, [...row.slice(1), id, now, now])) || 'conflict'
      }
      case 'delete':
        if (op.ifVersion === undefined) {
          await this.#run(() => this.#pool.execute(sql.deleteOne, [id]))
          return true
        }
        return (await this.#changed(sql.deleteIf, [id, op.ifVersion, now, now])) || this.#refused(op, now)
      case 'update':
      case 'remove': {
        const conditional = op.ifVersion !== undefined
        const changesPrincipal = sql.principal && op.principal !== undefined
        const params: Param[] = op.type === 'update' ? [jsonPath(op.key), encodeValue(op.value, op.key), op.expiresAt] : [jsonPath(op.key), op.expiresAt]
        if (changesPrincipal) params.push(op.principal == null ? null : principalBytes(op.principal))
        params.push(id, now, now)
        if (op.ifVersion !== undefined) params.push(op.ifVersion)
        const statement = op.type === 'update' ? sql.update(conditional, changesPrincipal) : sql.remove(conditional, changesPrincipal)
        if (await this.#changed(statement, params)) return true
        return conditional ? this.#refused(op, now) : false
      }
      case 'touch':
        return this.#changed(sql.touch, [op.expiresAt, id, now, now])
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
    let committed: Map<number, boolean | WriteConflict>
    try {
      committed = await this.#run(() => applyInTransaction(this.#pool, this.#sql, batch, texts, now))
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
    for (const [index, outcome] of committed) batch.done(index, outcome)
  }

  /** One `SELECT id, version … WHERE id IN (…)` of the live rows, per 1000 ids. */
  protected override async _versions(ids: readonly string[], now: number): Promise<Map<string, number>> {
    const versions = new Map<string, number>()
    for (const chunk of chunks(ids, VERSION_IDS)) {
      const [rows] = await this.#run(() => this.#pool.query<VersionRow[]>(this.#sql.versions, [chunk.map(rowId), now, now]))
      for (const row of rows) versions.set(row.id.toString('utf8'), Number(row.version))
    }
    return versions
  }

  /** One `SELECT` on the principal index; a table without the `principal` column (kept as it was under `createTable: false`) refuses. */
  protected override async _findByPrincipal(principal: string, now: number): Promise<PrincipalSession[]> {
    await this.#schema()
    if (!this.#sql.principal) throw unsupported(this.name, 'findByPrincipal', `the table ${this.table} has no "principal" column`)
    const [rows] = await this.#run(() => this.#pool.execute<PrincipalRow[]>(this.#sql.findByPrincipal, [principalBytes(principal), now, now]))
    return rows.map((row) => {
      const id = row.id.toString('utf8')
      return principalSession(id, readRecord(this.name, rawRecord(row, {}), id))
    })
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

  /** Run `work` once the table exists (when the storage creates it) and its columns are known. */
  async #run<T>(work: () => Promise<T>): Promise<T> {
    await this.#schema()
    try {
      return await work()
    } catch (err) {
      // The table was dropped: the next call creates (and checks) it again.
      if (codeOf(err) === 'ER_NO_SUCH_TABLE') this.#ready = undefined
      throw err
    }
  }

  /**
   * Once, for all concurrent first calls (forgotten on failure, so the next call tries again):
   * create the table when it is missing (`createTable`), and find out which of the later columns
   * (`issuer`, `principal` and its index) it has; see `checkSchema`.
   */
  #schema(): Promise<void> {
    return (this.#ready ??= checkSchema(this.#pool, this.table, this.#quoted, this.#createTable).then(
      (sql) => {
        this.#sql = sql
      },
      (err: unknown) => {
        this.#ready = undefined
        throw err
      },
    ))
  }

  async #changed(sql: string, params: Param[]): Promise<boolean> {
    const [result] = await this.#run(() => this.#pool.execute<ResultSetHeader>(sql, params))
    return result.affectedRows > 0
  }

  /** The outcome of a conditional write that changed no row, from the live row read after it (see the kit's `refusedWrite`). */
  async #refused(op: StorageOperation, now: number): Promise<boolean | WriteConflict> {
    const [rows] = await this.#run(() => this.#pool.execute<ProbedRow[]>(this.#sql.probe, [rowId(op.id), now, now]))
    const row = rows[0]
    // A key change needs the data to be an object, as `get` does.
    const usable = row !== undefined && (Number(row.is_object) === 1 || op.type === 'delete' || op.type === 'set')
    return refusedWrite(op, usable ? { version: Number(row.version) } : undefined)
  }

  async #deleteInChunks(sql: string, params: Param[]): Promise<number> {
    let deleted = 0
    for (;;) {
      const [result] = await this.#run(() => this.#pool.query<ResultSetHeader>(sql, [...params, DELETE_CHUNK]))
      deleted += result.affectedRows
      if (result.affectedRows < DELETE_CHUNK) return deleted
    }
  }
}

function isPromisePool(value: unknown): value is Pool {
  if (typeof value !== 'object' || value === null) return false
  const pool = value as Partial<Record<'execute' | 'query' | 'getConnection' | 'end' | 'promise', unknown>>
  // A callback pool from 'mysql2' has promise(); one from 'mysql2/promise' does not.
  return typeof pool.execute === 'function' && typeof pool.getConnection === 'function' && typeof pool.end === 'function' && pool.promise === undefined
}
