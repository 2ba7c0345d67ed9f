import { ClassicLevel } from 'classic-level'
import {
  AbstractStorage,
  KeyedLock,
  decideWrite,
  encodeValue,
  functionOption,
  invalidOperation,
  isLive,
  knownOptionsCheck,
  messageOf,
  nextVersion,
  nonNegativeNumberOption,
  optionNames,
  optionsObject,
  positiveIntegerOption,
  storageFailure,
  toError,
  type AbstractStorageOptions,
  type Batch,
  type BatchOutcome,
  principalSession,
  type PrincipalSession,
  type SessionRecord,
  type StorageCapabilities,
  type StorageOperation,
  type WriteConflict,
} from '../src/kit/index.js'
import {
  DATA,
  DEADLINE_DIGITS,
  END,
  META,
  VALID_ID,
  dataKey,
  deadlineKey,
  indexKey,
  parseMeta,
  principalKey,
  principalRange,
  toRecord,
  type Meta,
  type Working,
} from './level/layout.js'

/**
 * What the storage needs of a classic-level database or sublevel (any key and value
 * encodings: the storage makes three sublevels of its own, `sessions`, `expiry` and
 * `principals`, in utf8).
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
export interface LevelStorageOptions extends AbstractStorageOptions {
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
}

const OWNER = 'LevelStorage'
const KNOWN = optionNames<LevelStorageOptions>({ location: true, db: true, cleanupBatchSize: true, cleanupInterval: true, onCleanupError: true, now: true })

/**
 * Keeps sessions in LevelDB (classic-level), embedded in the process: the default persistent
 * storage, nothing to run beside the app. Every write of a session is one atomic database
 * batch; an update or a touch writes the changed key and the session's metadata, never the
 * whole session. Expiry is one deadline per session (every key lives and dies together), kept
 * in an index so `cleanup()` deletes expired sessions without reading live ones. Each session's
 * principal is kept in a third sublevel, an index written in the same batch as the session, so
 * `findByPrincipal` reads only the sessions of that principal.
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
export class LevelStorage extends AbstractStorage {
  /** Batches (one atomic `db.batch` each), the operators' side, the principal index; one process per database. */
  readonly capabilities: StorageCapabilities = { batch: true, admin: true, shared: false, principals: true }
  readonly #db: LevelDatabase
  /** The database this storage opened itself and closes; `undefined` for a given one. */
  readonly #owned: ClassicLevel | undefined
  readonly #records: LevelSublevel
  readonly #expiry: LevelSublevel
  readonly #principals: LevelSublevel
  readonly #cleanupBatchSize: number
  readonly #cleanupInterval: number
  readonly #onCleanupError: (error: Error) => void
  readonly #locks = new KeyedLock()
  readonly #opening: Promise<void>
  #cleanupTimer: NodeJS.Timeout | undefined
  #cleaning = false

  constructor(options: LevelStorageOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('LevelStorage needs options: { location } (a directory) or { db } (a classic-level database or sublevel)')
    }
    knownOptionsCheck(options, OWNER, KNOWN)
    super('level', optionsObject(options, OWNER), OWNER)
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
    this.#cleanupBatchSize = positiveIntegerOption(options.cleanupBatchSize, OWNER, 'cleanupBatchSize', 1000)
    this.#cleanupInterval = nonNegativeNumberOption(options.cleanupInterval, OWNER, 'cleanupInterval', 3600, 'number of seconds') * 1000
    this.#onCleanupError = functionOption(options.onCleanupError, OWNER, 'onCleanupError', (error: Error) => process.emitWarning(error))

    const utf8 = { keyEncoding: 'utf8', valueEncoding: 'utf8' } as const
    this.#records = this.#db.sublevel('sessions', utf8)
    this.#expiry = this.#db.sublevel('expiry', utf8)
    this.#principals = this.#db.sublevel('principals', utf8)
    this.#opening = this.#openDatabase()
    // A failed open is reported by every call (and by open()); it must not crash the process meanwhile.
    this.#opening.catch(noop)
  }

  /**
   * Apply the writes of many sessions in one atomic `db.batch`; operations on one id are
   * applied in array order. An operation that is invalid gets its error as its outcome (and
   * later operations of its id are skipped); a database failure rejects the whole call.
   */
  batch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    return this.applyBatch(operations)
  }

  protected override _open(): Promise<void> {
    return this.#opening
  }

  protected override async _get(id: string, now: number): Promise<SessionRecord | undefined> {
    if (!VALID_ID.test(id)) return undefined
    return toRecord(id, await this.#records.iterator({ gte: id + META, lt: id + END }).all(), now)
  }

  protected override async _write(batch: Batch, now: number): Promise<void> {
    const ids = new Set<string>()
    const replaced = new Set<string>()
    for (const [index, op] of batch.entries()) {
      if (VALID_ID.test(op.id)) {
        ids.add(op.id)
        if (op.type === 'set' || op.type === 'delete') replaced.add(op.id)
      } else if (op.type === 'set') {
        batch.fail(
          index,
          invalidOperation(this.name, `no session can be stored under id ${JSON.stringify(op.id)}: ids are 1 to 255 printable ASCII characters`),
        )
      } else {
        batch.done(index, op.type === 'delete') // no such session can exist
      }
    }
    if (ids.size === 0) return
    await this.#locks.run([...ids], async () => {
      const working = await this.#load([...ids], replaced)
      const writes: LevelOperation[] = []
      batch.applyEachSync((op) => this.#apply(op, working.get(op.id)!, now, writes))
      if (writes.length > 0) await this.#db.batch(writes)
    })
  }

  /** The metadata entries of `ids`, in one `getMany`. */
  protected override async _versions(ids: readonly string[], now: number): Promise<Map<string, number>> {
    const valid = ids.filter((id) => VALID_ID.test(id))
    const metas = valid.length === 0 ? [] : await this.#records.getMany(valid.map((id) => id + META))
    const versions = new Map<string, number>()
    valid.forEach((id, i) => {
      const text = metas[i]
      const meta = text === undefined ? undefined : parseMeta(text)
      if (meta !== undefined && isLive(meta, now)) versions.set(id, meta.version)
    })
    return versions
  }

  /** The principal index's entries of `principal`, then their metadata in one `getMany`; entries whose session no longer carries it are skipped. */
  protected override async _findByPrincipal(principal: string, now: number): Promise<PrincipalSession[]> {
    const prefix = principalRange(principal).gte
    const ids = (await this.#principals.keys(principalRange(principal)).all()).map((key) => key.slice(prefix.length))
    const metas = ids.length === 0 ? [] : await this.#records.getMany(ids.map((id) => id + META))
    const sessions: PrincipalSession[] = []
    ids.forEach((id, i) => {
      const text = metas[i]
      const meta = text === undefined ? undefined : parseMeta(text)
      if (meta !== undefined && meta.principal === principal && isLive(meta, now)) sessions.push(principalSession(id, meta))
    })
    return sessions
  }

  protected override async _length(now: number): Promise<number> {
    let count = 0
    for await (const _ of this.#expiry.keys({ gte: deadlineKey(now + 1) })) count++
    return count
  }

  /** Every live session with its id. Records that cannot be read are left out. */
  protected override async *_all(now: number): AsyncIterable<[string, SessionRecord]> {
    const ids: string[] = []
    for await (const key of this.#expiry.keys({ gte: deadlineKey(now + 1) })) ids.push(key.slice(DEADLINE_DIGITS))
    for (const id of ids) {
      const record = await this.usableRecord(id, now)
      if (record !== undefined) yield [id, record]
    }
  }

  protected override _clear(): Promise<void> {
    return this.#locks.runAlone(async () => {
      await this.#records.clear()
      await this.#expiry.clear()
      await this.#principals.clear()
    })
  }

  /**
   * Delete the sessions expired at `now`, walking the expiry index in batches of
   * `cleanupBatchSize` (one database batch each). Resolves to how many were deleted.
   */
  protected override async _cleanup(now: number): Promise<number> {
    const end = deadlineKey(Math.floor(now) + 1)
    let removed = 0
    for (;;) {
      const indexKeys = await this.#expiry.keys({ lt: end, limit: this.#cleanupBatchSize }).all()
      if (indexKeys.length === 0) return removed
      removed += await this.#removeExpired(indexKeys, now)
      if (indexKeys.length < this.#cleanupBatchSize) return removed
    }
  }

  /** Close the database if this storage opened it (once the writes in flight are done). */
  protected override async _close(): Promise<void> {
    clearInterval(this.#cleanupTimer)
    await this.#locks.runAlone(async () => {
      const owned = this.#owned
      if (owned !== undefined) await this.#opening.then(() => owned.close(), noop)
    })
  }

  async #openDatabase(): Promise<void> {
    try {
      // Another storage's database: wait for its owner to open it, never (re)open it ourselves.
      await this.#db.open({ passive: this.#owned === undefined })
    } catch (err) {
      throw this.#owned === undefined
        ? storageFailure(`the level storage cannot use the given database: it is not open or opening (${messageOf(err)})`, err)
        : openError(this.#owned.location, err)
    }
    if (this.#cleanupInterval > 0 && !this.closed) {
      this.#cleanupTimer = setInterval(() => this.#scheduledCleanup(), this.#cleanupInterval)
      this.#cleanupTimer.unref()
    }
  }

  #scheduledCleanup(): void {
    if (this.#cleaning) return // a large backlog may outlast the interval: never two walks at once
    this.#cleaning = true
    this.cleanup()
      .catch((err: unknown) => {
        if (!this.closed) this.#onCleanupError(toError(err))
      })
      .finally(() => (this.#cleaning = false))
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
        working.set(id, { meta: text === undefined ? undefined : parseMeta(text), dataKeys })
      }),
    )
    return working
  }

  /** Apply `op` to `state`, adding the database writes it takes to `writes`; its outcome. */
  #apply(op: StorageOperation, state: Working, now: number, writes: LevelOperation[]): boolean | WriteConflict {
    const records = this.#records
    const live = state.meta !== undefined && isLive(state.meta, now) ? state.meta : undefined
    const decision = decideWrite(op, live)
    if (decision !== 'apply') return decision
    switch (op.type) {
      case 'set': {
        const data = op.record.data
        const entries = Object.keys(data).map((key) => [dataKey(op.id, key), encodeValue(data[key], key)] as const)
        for (const key of state.dataKeys ?? []) writes.push({ type: 'del', sublevel: records, key })
        for (const [key, value] of entries) writes.push({ type: 'put', sublevel: records, key, value })
        state.dataKeys = new Set(entries.map(([key]) => key))
        const meta: Meta = { createdAt: op.record.createdAt, expiresAt: op.record.expiresAt, version: nextVersion(live) }
        if (op.record.absoluteExpiresAt !== undefined) meta.absoluteExpiresAt = op.record.absoluteExpiresAt
        if (op.record.issuer !== undefined) meta.issuer = op.record.issuer
        if (op.record.principal !== undefined) meta.principal = op.record.principal
        this.#putMeta(op.id, state, meta, writes)
        return true
      }
      case 'update':
      case 'remove': {
        const key = dataKey(op.id, op.key)
        if (op.type === 'update') {
          writes.push({ type: 'put', sublevel: records, key, value: encodeValue(op.value, op.key) })
          state.dataKeys?.add(key)
        } else {
          writes.push({ type: 'del', sublevel: records, key })
          state.dataKeys?.delete(key)
        }
        const meta: Meta = { ...live!, expiresAt: op.expiresAt, version: nextVersion(live) }
        if (op.principal === null) delete meta.principal
        else if (op.principal !== undefined) meta.principal = op.principal
        this.#putMeta(op.id, state, meta, writes)
        return true
      }
      case 'touch':
        this.#putMeta(op.id, state, { ...live!, expiresAt: op.expiresAt }, writes)
        return true
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
    const before = state.meta?.principal
    if (meta.principal !== before) {
      if (before !== undefined) writes.push({ type: 'del', sublevel: this.#principals, key: principalKey(before, id) })
      if (meta.principal !== undefined) writes.push({ type: 'put', sublevel: this.#principals, key: principalKey(meta.principal, id), value: '' })
    }
    state.meta = meta
  }

  #deleteSession(id: string, meta: Meta | undefined, dataKeys: Iterable<string>, writes: LevelOperation[]): void {
    for (const key of dataKeys) writes.push({ type: 'del', sublevel: this.#records, key })
    writes.push({ type: 'del', sublevel: this.#records, key: id + META })
    if (meta !== undefined) writes.push({ type: 'del', sublevel: this.#expiry, key: indexKey(id, meta) })
    if (meta?.principal !== undefined) writes.push({ type: 'del', sublevel: this.#principals, key: principalKey(meta.principal, id) })
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

function openError(location: string, err: unknown): Error {
  const cause = (err as { cause?: unknown } | null)?.cause
  const locked = (cause as { code?: unknown } | null)?.code === 'LEVEL_LOCKED'
  const message = locked
    ? `the level storage cannot open "${location}": another process (or another database object in this one) holds its lock — LevelDB allows one process per database; give each process its own location, or use a shared storage`
    : `the level storage cannot open "${location}": ${messageOf(cause ?? err)}`
  return storageFailure(message, err)
}

function noop(): void {}
