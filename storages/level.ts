import { ClassicLevel } from 'classic-level'
import { SessionError } from '../src/errors.js'
import type { BatchOutcome, JsonValue, SessionData, SessionRecord, SessionRecordInput, Storage, StorageOperation } from '../src/types.js'

/**
 * What the storage needs of a classic-level database or sublevel (any key and value
 * encodings: the storage makes two sublevels of its own, `sessions` and `expiry`, in utf8).
 */
export interface LevelDatabase {
  open(options: { passive: boolean }): Promise<void>
  sublevel(name: string, options: { keyEncoding: 'utf8'; valueEncoding: 'utf8' }): LevelSublevel
  batch(operations: LevelOperation[]): Promise<void>
}

/** What the storage needs of the sublevels it makes. */
export interface LevelSublevel {
  iterator(options: { gte: string; lt: string }): { all(): Promise<Array<[string, string]>> }
  keys(options: { gte?: string; lt?: string; limit?: number }): AsyncIterable<string> & { all(): Promise<string[]> }
  getMany(keys: string[]): Promise<Array<string | undefined>>
  clear(): Promise<void>
}

/** One write of a {@link LevelDatabase.batch}; the storage's go to one of its sublevels. */
export type LevelOperation =
  { type: 'put'; key: string; value: string; sublevel?: LevelSublevel | undefined } | { type: 'del'; key: string; sublevel?: LevelSublevel | undefined }

/** Options of {@link LevelStorage}: give `location` or `db`. */
export interface LevelStorageOptions {
  /** Directory of a LevelDB database the storage opens (created if missing) and closes. */
  location?: string
  /** An open (or opening) classic-level database or sublevel to reuse. The storage never closes it. */
  db?: LevelDatabase
  /** Most expired sessions `cleanup()` deletes in one database batch. Default 1000. */
  cleanupBatchSize?: number
  /** Seconds between automatic `cleanup()` runs; 0 turns them off. Default 3600. */
  cleanupInterval?: number
  /** Where failures of automatic cleanups go. Default: `process.emitWarning`. */
  onCleanupError?: (error: Error) => void
  /** Clock in epoch ms, for tests. Default `Date.now`. */
  now?: () => number
}

/** Session metadata, one entry per session; the data keys are entries of their own. */
interface Meta {
  createdAt: number
  expiresAt: number
  absoluteExpiresAt?: number
  version: number
}

/** What one id looks like while a batch is applied to it. */
interface Working {
  meta: Meta | undefined
  /** Keys of the data entries in the database (full entry keys); known only for ids a set or delete replaces. */
  dataKeys: Set<string> | undefined
  /** An earlier operation of this id in the batch failed: later ones are not applied. */
  failed: Error | undefined
}

/**
 * Layout, inside two sublevels of the database:
 * - `sessions`: `<id>\x00` → metadata JSON, `<id>\x01<key as JSON>` → the value as JSON;
 * - `expiry`: `<deadline, 16 digits><id>` → '' — the expiry index `cleanup()` walks.
 * Ids are printable ASCII, so `\x00` and `\x01` cannot occur in them and one key range
 * holds exactly one session.
 */
const META = '\x00'
const DATA = '\x01'
const END = '\x02'
const VALID_ID = /^[\x21-\x7e]{1,255}$/
const DEADLINE_DIGITS = 16
const MAX_DEADLINE = 10 ** DEADLINE_DIGITS - 1

/**
 * Keeps sessions in LevelDB (classic-level), embedded in the process: the default persistent
 * storage, nothing to run beside the app. Every write of a session is one atomic database
 * batch; an update or a touch writes the changed key and the session's metadata, never the
 * whole session. Expiry is one deadline per session (every key lives and dies together), kept
 * in an index so `cleanup()` deletes expired sessions without reading live ones.
 *
 * LevelDB allows one process per database: give each process its own location, or use a
 * shared storage (MySQL, DynamoDB) when processes must take sessions over from each other. A
 * second process opening the same location gets a clear error, not a hang.
 *
 * @example
 * ```ts
 * import { SessionManager, CookieIdentity } from 'caching-session-manager'
 * import { LevelStorage } from 'caching-session-manager/storages/level'
 *
 * const storage = new LevelStorage({ location: './data/sessions' })
 * await storage.open() // optional: fail at startup if another process holds the database
 * const manager = new SessionManager({ storage, identities: [new CookieIdentity({ keys: [process.env.SESSION_KEY!] })] })
 *
 * // Or share an application database: the sessions go in a sublevel of it.
 * const db = new ClassicLevel('./data/app')
 * const shared = new LevelStorage({ db: db.sublevel('auth') })
 * ```
 */
export class LevelStorage implements Storage {
  readonly name = 'level'
  readonly #db: LevelDatabase
  /** The database this storage opened itself and closes; `undefined` for a given one. */
  readonly #owned: ClassicLevel | undefined
  readonly #records: LevelSublevel
  readonly #expiry: LevelSublevel
  readonly #now: () => number
  readonly #cleanupBatchSize: number
  readonly #cleanupInterval: number
  readonly #onCleanupError: (error: Error) => void
  readonly #locks = new KeyedLock()
  readonly #opening: Promise<void>
  #cleanupTimer: NodeJS.Timeout | undefined
  #cleaning = false
  #closing: Promise<void> | undefined

  constructor(options: LevelStorageOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('LevelStorage needs options: { location } (a directory) or { db } (a classic-level database or sublevel)')
    }
    const { location, db } = options
    if (location !== undefined && db !== undefined) throw new TypeError('LevelStorage takes option "location" or option "db", not both')
    if (db !== undefined) {
      if (typeof db !== 'object' || db === null || typeof db.sublevel !== 'function' || typeof db.batch !== 'function') {
        throw new TypeError('LevelStorage option "db" must be a classic-level database or sublevel')
      }
      this.#db = db
      this.#owned = undefined
    } else if (location !== undefined) {
      if (typeof location !== 'string' || location === '') throw new TypeError('LevelStorage option "location" must be a non-empty directory path')
      this.#owned = new ClassicLevel(location)
      this.#db = this.#owned
    } else {
      throw new TypeError('LevelStorage needs option "location" (a directory) or option "db" (a classic-level database or sublevel)')
    }
    this.#cleanupBatchSize = positiveInteger(options.cleanupBatchSize, 'cleanupBatchSize', 1000)
    const interval = options.cleanupInterval ?? 3600
    if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0) {
      throw new TypeError('LevelStorage option "cleanupInterval" must be a non-negative number of seconds')
    }
    this.#cleanupInterval = interval * 1000
    if (options.onCleanupError !== undefined && typeof options.onCleanupError !== 'function')
      throw new TypeError('LevelStorage option "onCleanupError" must be a function')
    this.#onCleanupError = options.onCleanupError ?? ((error) => process.emitWarning(error))
    if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError('LevelStorage option "now" must be a function')
    this.#now = options.now ?? Date.now

    const utf8 = { keyEncoding: 'utf8', valueEncoding: 'utf8' } as const
    this.#records = this.#db.sublevel('sessions', utf8)
    this.#expiry = this.#db.sublevel('expiry', utf8)
    this.#opening = this.#open()
    // A failed open is reported by every call (and by open()); it must not crash the process meanwhile.
    this.#opening.catch(noop)
  }

  /**
   * Resolves when the database is open; rejects with the reason it cannot be (for example
   * another process holds it). Optional: every other method waits for it too.
   */
  open(): Promise<void> {
    return this.#opening
  }

  get(id: string): Promise<SessionRecord | undefined> {
    return this.#run('read a session', async () => {
      if (!VALID_ID.test(id)) return undefined
      const entries = await this.#records.iterator({ gte: id + META, lt: id + END }).all()
      return readRecord(id, entries, this.#now())
    })
  }

  set(id: string, record: SessionRecordInput): Promise<void> {
    return this.#single({ type: 'set', id, record }).then(noop)
  }

  update(id: string, key: string, value: JsonValue, expiresAt: number): Promise<boolean> {
    return this.#single({ type: 'update', id, key, value, expiresAt })
  }

  remove(id: string, key: string, expiresAt: number): Promise<boolean> {
    return this.#single({ type: 'remove', id, key, expiresAt })
  }

  delete(id: string): Promise<void> {
    return this.#single({ type: 'delete', id }).then(noop)
  }

  touch(id: string, expiresAt: number): Promise<boolean> {
    return this.#single({ type: 'touch', id, expiresAt })
  }

  /**
   * Apply the writes of many sessions in one atomic `db.batch`; operations on one id are
   * applied in array order. An operation that is invalid gets its error as its outcome (and
   * later operations of its id are skipped); a database failure rejects the whole call.
   */
  batch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    return this.#run('write sessions', () => this.#write(operations))
  }

  length(): Promise<number> {
    return this.#run('count sessions', async () => {
      let count = 0
      for await (const _ of this.#expiry.keys({ gte: deadlineKey(this.#now() + 1) })) count++
      return count
    })
  }

  /** Every live session with its id. Records that cannot be read are left out. */
  async *all(): AsyncIterable<[string, SessionRecord]> {
    const ids: string[] = []
    await this.#run('list sessions', async () => {
      for await (const key of this.#expiry.keys({ gte: deadlineKey(this.#now() + 1) })) ids.push(key.slice(DEADLINE_DIGITS))
    })
    for (const id of ids) {
      let record: SessionRecord | undefined
      try {
        record = await this.get(id)
      } catch (err) {
        if (err instanceof SessionError && err.code === 'SESSION_INVALID_RECORD') continue
        throw err
      }
      if (record !== undefined) yield [id, record]
    }
  }

  clear(): Promise<void> {
    return this.#run('clear sessions', () =>
      this.#locks.runAlone(async () => {
        await this.#records.clear()
        await this.#expiry.clear()
      }),
    )
  }

  /**
   * Delete the sessions expired at `now`, walking the expiry index in batches of
   * `cleanupBatchSize` (one database batch each). Resolves to how many were deleted.
   */
  cleanup(now: number = this.#now()): Promise<number> {
    return this.#run('clean up expired sessions', async () => {
      const end = deadlineKey(Math.floor(now) + 1)
      let removed = 0
      for (;;) {
        const indexKeys = await this.#expiry.keys({ lt: end, limit: this.#cleanupBatchSize }).all()
        if (indexKeys.length === 0) return removed
        removed += await this.#removeExpired(indexKeys, now)
        if (indexKeys.length < this.#cleanupBatchSize) return removed
      }
    })
  }

  /** Wait for writes in flight, then close the database if this storage opened it. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#cleanupTimer)
      await this.#locks.runAlone(async () => {
        const owned = this.#owned
        if (owned !== undefined) await this.#opening.then(() => owned.close(), noop)
      })
    })()
    return this.#closing
  }

  async #open(): Promise<void> {
    try {
      // Another storage's database: wait for its owner to open it, never (re)open it ourselves.
      await this.#db.open({ passive: this.#owned === undefined })
    } catch (err) {
      throw this.#owned === undefined
        ? new LevelStorageError(`the level storage cannot use the given database: it is not open or opening (${messageOf(err)})`, err)
        : openError(this.#owned.location, err)
    }
    if (this.#cleanupInterval > 0 && this.#closing === undefined) {
      this.#cleanupTimer = setInterval(() => this.#scheduledCleanup(), this.#cleanupInterval)
      this.#cleanupTimer.unref()
    }
  }

  #scheduledCleanup(): void {
    if (this.#cleaning) return // a large backlog may outlast the interval: never two walks at once
    this.#cleaning = true
    this.cleanup()
      .catch((err: unknown) => {
        if (this.#closing === undefined) this.#onCleanupError(err instanceof Error ? err : new Error(String(err)))
      })
      .finally(() => (this.#cleaning = false))
  }

  async #run<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) throw new Error(`the level storage is closed (could not ${what})`)
    await this.#opening
    if (this.#closing !== undefined) throw new Error(`the level storage is closed (could not ${what})`)
    try {
      return await work()
    } catch (err) {
      if (err instanceof SessionError || err instanceof LevelStorageError) throw err
      throw new LevelStorageError(`the level storage could not ${what}: ${messageOf(err)}`, err)
    }
  }

  async #single(op: StorageOperation): Promise<boolean> {
    const [outcome] = await this.#run('write a session', () => this.#write([op]))
    if (outcome instanceof Error) throw outcome
    return outcome === true
  }

  async #write(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = new Array<BatchOutcome>(operations.length).fill(false)
    const ids = new Set<string>()
    const replaced = new Set<string>()
    for (const [index, op] of operations.entries()) {
      const problem = checkOperation(op)
      if (problem !== undefined) outcomes[index] = problem
      else if (!VALID_ID.test(op.id))
        outcomes[index] = op.type === 'delete' // no such session can exist
      else {
        ids.add(op.id)
        if (op.type === 'set' || op.type === 'delete') replaced.add(op.id)
      }
    }
    if (ids.size === 0) return outcomes
    return this.#locks.run([...ids], async () => {
      const working = await this.#load([...ids], replaced)
      const now = this.#now()
      const writes: LevelOperation[] = []
      for (const [index, op] of operations.entries()) {
        const state = working.get(op.id)
        if (state === undefined) continue
        const problem = outcomes[index]
        if (problem instanceof Error) {
          state.failed ??= problem
          continue
        }
        if (state.failed !== undefined) {
          outcomes[index] = state.failed
          continue
        }
        try {
          outcomes[index] = this.#apply(op, state, now, writes)
        } catch (err) {
          state.failed = err instanceof Error ? err : new Error(String(err))
          outcomes[index] = state.failed
        }
      }
      if (writes.length > 0) await this.#db.batch(writes)
      return outcomes
    })
  }

  /** The current metadata of `ids`, and the data entry keys of those a set or delete replaces. */
  async #load(ids: string[], replaced: Set<string>): Promise<Map<string, Working>> {
    const metas = await this.#records.getMany(ids.map((id) => id + META))
    const working = new Map<string, Working>()
    await Promise.all(
      ids.map(async (id, i) => {
        const text = metas[i]
        let dataKeys: Set<string> | undefined
        // Without metadata there are no data entries: every write adds both in one batch.
        if (replaced.has(id)) dataKeys = text === undefined ? new Set() : new Set(await this.#records.keys({ gte: id + DATA, lt: id + END }).all())
        working.set(id, { meta: text === undefined ? undefined : parseMeta(text), dataKeys, failed: undefined })
      }),
    )
    return working
  }

  /** Apply `op` to `state`, adding the database writes it takes to `writes`; its outcome. */
  #apply(op: StorageOperation, state: Working, now: number, writes: LevelOperation[]): boolean {
    const records = this.#records
    switch (op.type) {
      case 'set': {
        const data = op.record.data
        const entries = Object.keys(data).map((key) => [dataKey(op.id, key), serialize(data[key], key)] as const)
        for (const key of state.dataKeys ?? []) writes.push({ type: 'del', sublevel: records, key })
        for (const [key, value] of entries) writes.push({ type: 'put', sublevel: records, key, value })
        state.dataKeys = new Set(entries.map(([key]) => key))
        const meta: Meta = { createdAt: op.record.createdAt, expiresAt: op.record.expiresAt, version: (state.meta?.version ?? 0) + 1 }
        const absolute = op.record.absoluteExpiresAt
        if (absolute !== undefined && absolute !== null) meta.absoluteExpiresAt = absolute
        this.#putMeta(op.id, state, meta, writes)
        return true
      }
      case 'update':
      case 'remove':
      case 'touch': {
        const meta = state.meta
        if (meta === undefined || !isLive(meta, now)) return false
        if (op.type !== 'touch') {
          const key = dataKey(op.id, op.key)
          if (op.type === 'update') {
            writes.push({ type: 'put', sublevel: records, key, value: serialize(op.value, op.key) })
            state.dataKeys?.add(key)
          } else {
            writes.push({ type: 'del', sublevel: records, key })
            state.dataKeys?.delete(key)
          }
        }
        this.#putMeta(op.id, state, { ...meta, expiresAt: op.expiresAt, version: meta.version + 1 }, writes)
        return true
      }
      case 'delete':
        this.#deleteSession(op.id, state.meta, state.dataKeys ?? [], writes)
        state.meta = undefined
        state.dataKeys = new Set()
        return true
    }
  }

  #putMeta(id: string, state: Working, meta: Meta, writes: LevelOperation[]): void {
    writes.push({ type: 'put', sublevel: this.#records, key: id + META, value: JSON.stringify(meta) })
    const index = indexKey(id, meta)
    const previous = state.meta === undefined ? undefined : indexKey(id, state.meta)
    // Key writes usually keep the session's deadline, and so its index entry: deleting and putting it again would only cost.
    if (index !== previous) {
      if (previous !== undefined) writes.push({ type: 'del', sublevel: this.#expiry, key: previous })
      writes.push({ type: 'put', sublevel: this.#expiry, key: index, value: '' })
    }
    state.meta = meta
  }

  #deleteSession(id: string, meta: Meta | undefined, dataKeys: Iterable<string>, writes: LevelOperation[]): void {
    for (const key of dataKeys) writes.push({ type: 'del', sublevel: this.#records, key })
    writes.push({ type: 'del', sublevel: this.#records, key: id + META })
    if (meta !== undefined) writes.push({ type: 'del', sublevel: this.#expiry, key: indexKey(id, meta) })
  }

  /** Delete the sessions of one chunk of the expiry index that are still expired; stale index entries go too. */
  async #removeExpired(indexKeys: string[], now: number): Promise<number> {
    const ids = [...new Set(indexKeys.map((key) => key.slice(DEADLINE_DIGITS)))]
    return this.#locks.run(ids, async () => {
      const working = await this.#load(ids, new Set(ids))
      const writes: LevelOperation[] = []
      let removed = 0
      for (const id of ids) {
        const { meta, dataKeys } = working.get(id)!
        if (meta !== undefined && !isLive(meta, now)) {
          this.#deleteSession(id, meta, dataKeys ?? [], writes)
          removed++
        }
      }
      // What the index said, wherever the session's deadline is now (moved by a write meanwhile, or gone).
      for (const key of indexKeys) writes.push({ type: 'del', sublevel: this.#expiry, key })
      await this.#db.batch(writes)
      return removed
    })
  }
}

/** A failure of the database, named for the level storage; `cause` is classic-level's error. */
class LevelStorageError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause })
    this.name = 'LevelStorageError'
  }
}

/**
 * Runs work that needs some ids (or the whole store) to itself. Waiting is in arrival order
 * per id, and a call registers for all its ids at once, so calls never deadlock.
 */
class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>()
  #wholeStore: Promise<void> = Promise.resolve()

  async run<T>(ids: readonly string[], work: () => Promise<T>): Promise<T> {
    const before: Array<Promise<void>> = [this.#wholeStore]
    for (const id of ids) {
      const tail = this.#tails.get(id)
      if (tail !== undefined) before.push(tail)
    }
    const { promise: done, resolve: release } = withResolvers()
    for (const id of ids) this.#tails.set(id, done)
    try {
      await Promise.all(before)
      return await work()
    } finally {
      release()
      for (const id of ids) if (this.#tails.get(id) === done) this.#tails.delete(id)
    }
  }

  async runAlone<T>(work: () => Promise<T>): Promise<T> {
    const before = [this.#wholeStore, ...this.#tails.values()]
    const { promise: done, resolve: release } = withResolvers()
    this.#wholeStore = done
    try {
      await Promise.all(before)
      return await work()
    } finally {
      release()
    }
  }
}

function withResolvers(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

function checkOperation(op: StorageOperation): Error | undefined {
  if (typeof op !== 'object' || op === null) return new TypeError('the level storage got a batch operation that is not an object')
  if (typeof op.id !== 'string') return new TypeError('the level storage needs session ids that are strings')
  switch (op.type) {
    case 'set': {
      if (!VALID_ID.test(op.id))
        return new TypeError(`the level storage cannot store a session under id ${JSON.stringify(op.id)}: ids are 1 to 255 printable ASCII characters`)
      const record = op.record as Partial<SessionRecordInput> | null
      if (typeof record !== 'object' || record === null || typeof record.data !== 'object' || record.data === null || Array.isArray(record.data)) {
        return new TypeError('the level storage cannot store a session record without a data object')
      }
      const absolute = record.absoluteExpiresAt
      if (
        !Number.isFinite(record.createdAt) ||
        !Number.isFinite(record.expiresAt) ||
        (absolute !== undefined && absolute !== null && !Number.isFinite(absolute))
      ) {
        return new TypeError('the level storage cannot store a session record whose createdAt, expiresAt or absoluteExpiresAt is not a finite number')
      }
      return undefined
    }
    case 'update':
    case 'remove':
      if (typeof op.key !== 'string') return new TypeError('the level storage needs session keys that are strings')
      if (!Number.isFinite(op.expiresAt)) return new TypeError('the level storage needs expiresAt to be a finite number')
      return undefined
    case 'touch':
      if (!Number.isFinite(op.expiresAt)) return new TypeError('the level storage needs expiresAt to be a finite number')
      return undefined
    case 'delete':
      return undefined
    default:
      return new TypeError(`the level storage got an unknown batch operation type ${JSON.stringify((op as { type: unknown }).type)}`)
  }
}

/** The session's record from its entries (metadata first, then data), or why it cannot be used. */
function readRecord(id: string, entries: Array<[string, string]>, now: number): SessionRecord | undefined {
  if (entries.length === 0) return undefined
  const [first, ...rest] = entries
  const meta = first![0] === id + META ? parseMeta(first![1]) : undefined
  if (meta === undefined)
    throw invalidRecord(id, first![0] === id + META ? 'its metadata is not valid JSON with createdAt, expiresAt and version' : 'it has data but no metadata')
  if (!isLive(meta, now)) return undefined
  const data: SessionData = {}
  for (const [key, text] of rest) {
    let name: unknown
    let value: JsonValue
    try {
      name = JSON.parse(key.slice(id.length + 1))
      value = JSON.parse(text) as JsonValue
    } catch {
      throw invalidRecord(id, 'one of its values is not valid JSON')
    }
    if (typeof name !== 'string') throw invalidRecord(id, 'one of its keys is not a string')
    // defineProperty: "__proto__" is an ordinary own key, never the prototype.
    Object.defineProperty(data, name, { value, enumerable: true, writable: true, configurable: true })
  }
  const record: SessionRecord = { data, createdAt: meta.createdAt, expiresAt: meta.expiresAt, version: meta.version }
  if (meta.absoluteExpiresAt !== undefined) record.absoluteExpiresAt = meta.absoluteExpiresAt
  return record
}

function invalidRecord(id: string, problem: string): SessionError {
  return new SessionError('SESSION_INVALID_RECORD', `the level storage holds an unusable record for a session (${problem})`, { sessionId: id })
}

/** Parsed metadata, or `undefined` when it is not metadata at all. */
function parseMeta(text: string): Meta | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const { createdAt, expiresAt, absoluteExpiresAt, version } = parsed as Record<string, unknown>
  if (typeof createdAt !== 'number' || typeof expiresAt !== 'number' || !Number.isFinite(createdAt) || !Number.isFinite(expiresAt)) return undefined
  if (typeof version !== 'number' || !Number.isInteger(version)) return undefined
  if (absoluteExpiresAt !== undefined && (typeof absoluteExpiresAt !== 'number' || !Number.isFinite(absoluteExpiresAt))) return undefined
  const meta: Meta = { createdAt, expiresAt, version }
  if (absoluteExpiresAt !== undefined) meta.absoluteExpiresAt = absoluteExpiresAt
  return meta
}

function isLive(meta: Meta, now: number): boolean {
  return now < deadlineOf(meta)
}

function deadlineOf(meta: Meta): number {
  return meta.absoluteExpiresAt === undefined ? meta.expiresAt : Math.min(meta.expiresAt, meta.absoluteExpiresAt)
}

function dataKey(id: string, key: string): string {
  // As JSON, any key (even one with lone surrogates) survives the UTF-8 round trip exactly.
  return id + DATA + JSON.stringify(key)
}

/** Fixed-width milliseconds, so the index sorts by deadline. Fractions round up: live while `now` is below. */
function deadlineKey(deadline: number): string {
  return String(Math.min(MAX_DEADLINE, Math.max(0, Math.ceil(deadline)))).padStart(DEADLINE_DIGITS, '0')
}

function indexKey(id: string, meta: Meta): string {
  return deadlineKey(deadlineOf(meta)) + id
}

function serialize(value: unknown, key: string): string {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (err) {
    throw new TypeError(`the level storage cannot store the value of "${key}": ${messageOf(err)}`)
  }
  if (text === undefined) throw new TypeError(`the level storage cannot store the value of "${key}": it is not JSON`)
  return text
}

function openError(location: string, err: unknown): LevelStorageError {
  const cause = (err as { cause?: unknown } | null)?.cause
  const locked = (cause as { code?: unknown } | null)?.code === 'LEVEL_LOCKED'
  const message = locked
    ? `the level storage cannot open "${location}": another process (or another database object in this one) holds its lock — LevelDB allows one process per database; give each process its own location, or use a shared storage`
    : `the level storage cannot open "${location}": ${messageOf(cause ?? err)}`
  return new LevelStorageError(message, err)
}

function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new TypeError(`LevelStorage option "${name}" must be a positive integer`)
  return value
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function noop(): void {}
