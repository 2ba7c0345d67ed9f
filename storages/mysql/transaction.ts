/**
 * One batch of `MySQLStorage` as one transaction: internal to
 * `caching-session-manager/storages/mysql`.
 *
 * @internal
 * @module
 */
import type { Pool, PoolConnection, ResultSetHeader } from 'mysql2/promise'
import { chunks, decideWrite, type Batch, type StorageOperation, type WriteConflict } from '../../src/kit/index.js'
import { changeRow, rowId, setRow, type Change, type Entry, type LockedRow, type SetOp, type Statements } from './statements.js'

/** Rows per multi-row statement of a batch, and the bytes of values they may carry (under the 16 MiB default `max_allowed_packet`). */
const BATCH_ROWS = 500
const BATCH_BYTES = 4 * 1024 * 1024

/** A batch's transaction while it runs: outcomes count only once it is committed. */
interface Transaction {
  readonly connection: PoolConnection
  readonly sql: Statements
  /** The JSON text of each set's data and each update's value, by operation index. */
  readonly texts: ReadonlyMap<number, string>
  readonly outcomes: Map<number, boolean | WriteConflict>
  /** Ids an operation of which conflicted: their later operations are not applied. */
  readonly conflicted: Set<string>
  readonly now: number
  /** Whether a round whose row-dependent operations are all conditional key changes skips the locking read (see {@link applyRound}). */
  readonly optimistic: boolean
}

/** Thrown by a round whose conditional key changes did not all apply: the transaction is rolled back and run again with the locking read. */
class NotAllApplied extends Error {}

/** What a round knows of a row it locked. */
interface Locked {
  readonly version: number
  readonly live: boolean
  readonly isObject: boolean
}

/**
 * Apply the pending operations of `batch` in one transaction, in rounds (round k holds the k-th
 * operation of every session); resolves to their outcomes once it is committed, and rejects
 * (rolled back, nothing applied) when a statement fails.
 */
export async function applyInTransaction(pool: Pool, sql: Statements, batch: Batch, texts: ReadonlyMap<number, string>, now: number) {
  const connection = await pool.getConnection()
  let reusable = true
  try {
    for (const optimistic of [true, false]) {
      await connection.query('START TRANSACTION')
      const tx: Transaction = { connection, sql, texts, outcomes: new Map(), conflicted: new Set(), now, optimistic }
      try {
        for (const round of batch.rounds()) await applyRound(tx, round)
      } catch (err) {
        if (!(err instanceof NotAllApplied)) throw err
        await connection.query('ROLLBACK')
        continue
      }
      await connection.query('COMMIT')
      return tx.outcomes
    }
    throw new Error('unreachable: the locking pass never throws NotAllApplied')
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

/**
 * One round holds at most one operation per id, so its statements may run in any order.
 * Unconditional sets go first (the upsert itself continues the version of a live row). The
 * operations that depend on a row (key changes, touches, anything with `ifVersion`) then lock
 * what there is of their ids with one read and are decided from it by the kit's rule; a set
 * with `ifVersion` 0 of an id without a row is a plain `INSERT`, so a row made meanwhile by
 * another process fails the statement (the batch is then applied one by one) instead of being
 * replaced.
 */
async function applyRound(tx: Transaction, round: Array<Entry<StorageOperation>>): Promise<void> {
  const { connection, sql, texts, outcomes, conflicted } = tx
  const sets: Array<Entry<SetOp>> = []
  const dependent: Array<Entry<StorageOperation>> = []
  const deletes: Array<Entry<StorageOperation>> = []
  for (const entry of round) {
    const [index, op] = entry
    if (conflicted.has(op.id)) outcomes.set(index, 'conflict')
    else if (dependsOnRow(op)) dependent.push(entry)
    else if (op.type === 'set') sets.push([index, op])
    else deletes.push(entry)
  }
  // Each row's parameters and SQL take about 128 bytes besides its JSON text.
  const bytes = ([index]: Entry<StorageOperation>): number => 128 + Buffer.byteLength(texts.get(index) ?? '')
  const upsert = async (entries: Array<Entry<SetOp>>): Promise<void> => {
    for (const chunk of chunks(entries, BATCH_ROWS, BATCH_BYTES, bytes)) {
      await connection.query(sql.upsert(chunk.length), [...chunk.flatMap(([index, op]) => setRow(sql, op, texts.get(index)!)), tx.now, tx.now])
      for (const [index] of chunk) outcomes.set(index, true)
    }
  }
  await upsert(sets)

  // Conditional key changes (what a manager sends for every write of a key) are decided by the
  // statement itself: when it changed as many rows as it has, each applied, and no read is
  // needed; otherwise the transaction runs again with the locking read, which tells a conflict
  // from a missing record per operation.
  if (tx.optimistic && dependent.length > 0 && dependent.every(([, op]) => (op.type === 'update' || op.type === 'remove') && op.ifVersion !== undefined)) {
    for (const chunk of chunks(dependent as Array<Entry<Change>>, BATCH_ROWS, BATCH_BYTES, bytes)) {
      const [result] = await connection.query<ResultSetHeader>(sql.changeManyIf, [
        `[${chunk.map(([index, op]) => changeRow(op, texts.get(index))).join(',')}]`,
        tx.now,
        tx.now,
      ])
      if (result.affectedRows !== chunk.length) throw new NotAllApplied()
      for (const [index] of chunk) outcomes.set(index, true)
    }
    dependent.length = 0
  }

  const rows = await lockRows(
    tx,
    dependent.map(([, op]) => op.id),
  )
  const replaces: Array<Entry<SetOp>> = []
  const inserts: Array<Entry<SetOp>> = []
  const changes: Array<Entry<Change>> = []
  for (const [index, op] of dependent) {
    const row = rows.get(op.id)
    // Key changes need the data to be an object, as `get` does; anything else only a live row.
    const usable = row !== undefined && row.live && (row.isObject || op.type === 'touch' || op.type === 'set' || op.type === 'delete')
    const decision = decideWrite(op, usable ? row : undefined)
    if (decision !== 'apply') {
      outcomes.set(index, decision)
      if (decision === 'conflict') conflicted.add(op.id)
    } else if (op.type === 'set') (op.ifVersion === 0 && row === undefined ? inserts : replaces).push([index, op])
    else if (op.type === 'delete') deletes.push([index, op])
    else changes.push([index, op])
  }
  await upsert(replaces)
  for (const chunk of chunks(inserts, BATCH_ROWS, BATCH_BYTES, bytes)) {
    await connection.query(
      sql.insert(chunk.length),
      chunk.flatMap(([index, op]) => setRow(sql, op, texts.get(index)!)),
    )
    for (const [index] of chunk) outcomes.set(index, true)
  }
  for (const chunk of chunks(deletes, BATCH_ROWS)) {
    await connection.query(sql.deleteMany, [chunk.map(([, op]) => rowId(op.id))])
    for (const [index] of chunk) outcomes.set(index, true)
  }
  for (const chunk of chunks(changes, BATCH_ROWS, BATCH_BYTES, bytes)) {
    await connection.query(sql.changeMany, [`[${chunk.map(([index, op]) => changeRow(op, texts.get(index))).join(',')}]`])
    for (const [index] of chunk) outcomes.set(index, true)
  }
}

/** Whether what `op` does depends on the row it finds. */
function dependsOnRow(op: StorageOperation): boolean {
  return (op.type !== 'set' && op.type !== 'delete') || op.ifVersion !== undefined
}

/** Read and lock the rows of `ids` (expired ones too), `BATCH_ROWS` ids per statement. */
async function lockRows({ connection, sql, now }: Transaction, ids: string[]): Promise<Map<string, Locked>> {
  const rows = new Map<string, Locked>()
  if (ids.length === 0) return rows
  for (const chunk of chunks(ids, BATCH_ROWS)) {
    const [found] = await connection.query<LockedRow[]>(sql.lockRows, [now, now, chunk.map(rowId)])
    for (const row of found)
      rows.set(row.id.toString('utf8'), { version: Number(row.version), live: Number(row.live) === 1, isObject: Number(row.is_object) === 1 })
  }
  return rows
}
