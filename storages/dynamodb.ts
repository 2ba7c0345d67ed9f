import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  ScanCommand,
  UpdateItemCommand,
  type DynamoDBClientConfig,
  type ScanCommandInput,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb'
import {
  AbstractStorage,
  booleanOption,
  chunks,
  invalidRecord,
  knownOptionsCheck,
  optionNames,
  optionsObject,
  positiveIntegerOption,
  refusedWrite,
  storageError,
  unsupported,
  type AbstractStorageOptions,
} from '../src/kit/index.js'
import type { Batch, BatchOutcome, PrincipalSession, SessionRecord, StorageCapabilities, StorageOperation, WriteConflict } from '../src/kit/index.js'
import {
  deleteCommand,
  deleteRequest,
  key,
  liveFilter,
  liveVersion,
  setCommand,
  toPrincipalSession,
  toRecord,
  updateCommand,
  versionsRequest,
  type Item,
  type KeyChange,
  type SetCondition,
} from './dynamodb/items.js'
import { eachLimit, sendUntilProcessed, UNPROCESSED_SENDS } from './dynamodb/requests.js'
import { queryPrincipal } from './dynamodb/principals.js'
import { addIndexCommand, createTableIfMissing, describeTable, errorName, PRINCIPAL_INDEX, principalIndexStatus } from './dynamodb/table.js'

export { sendUntilProcessed, type RetryOptions } from './dynamodb/requests.js'

/**
 * Options of {@link DynamoDBStorage}. Give `client` or `clientConfig`, or neither for a client
 * configured from the environment (region, credentials) as the AWS SDK does by default.
 *
 * @example
 * ```ts
 * const options: DynamoDBStorageOptions = { clientConfig: { region: 'eu-west-1' }, table: 'sessions', createTable: true }
 * ```
 */
export interface DynamoDBStorageOptions extends AbstractStorageOptions {
  /**
   * A client you own: the storage uses it as configured (its SDK retries included, which then
   * come on top of the write queue's) and never destroys it.
   */
  client?: DynamoDBClient
  /**
   * Configuration of a client the storage makes (and destroys on `close`). That client sends
   * each request once (`maxAttempts: 1`) unless this says otherwise: the write queue retries
   * failed writes.
   */
  clientConfig?: DynamoDBClientConfig
  /** Table name: 3 to 255 of `a-z A-Z 0-9 _ - .`. Its partition key is `id` (string). Default `'sessions'`. */
  table?: string
  /**
   * Create the table (on-demand capacity, TTL on the `ttl` attribute, the `principal-index`
   * global secondary index) on first use when it is missing, and wait until it is active; add
   * the index to a table that lacks it. Default `false`: tables are usually made by
   * infrastructure code.
   */
  createTable?: boolean
  /** Requests a batch, `clear` or `cleanup` keeps in flight at once. Default 32. */
  concurrency?: number
}

const OWNER = 'DynamoDBStorage'
const KNOWN = optionNames<DynamoDBStorageOptions>({ client: true, clientConfig: true, table: true, createTable: true, concurrency: true, now: true })
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/
/** BatchWriteItem takes at most 25 requests. */
const BATCH_WRITE_LIMIT = 25
/** BatchGetItem reads at most 100 keys. */
const BATCH_GET_LIMIT = 100
/** Tries of an unconditional set that keeps meeting an item that expires or comes alive between two of them. */
const SET_TRIES = 4

/** Most bytes of session data (its JSON) one DynamoDB item holds: 400 KiB less 4 KiB for the item's other attributes. */
export const DYNAMODB_MAX_DATA_BYTES = 409_600 - 4_096

/**
 * Keeps sessions in a DynamoDB table through the AWS SDK v3. One item per session: `id` (the
 * partition key), `data` (a map of key → the value's JSON text), `createdAt`, `expiresAt`,
 * `absoluteExpiresAt` (epoch ms), `version`, and `ttl` (epoch seconds of the deadline) so
 * DynamoDB's TTL deletes expired items. `update`, `remove` and `touch` are one conditional
 * `UpdateItem` each on a path of the map, never a read-modify-write, so processes writing
 * different keys of one session all keep their writes; a touch keeps the version. A write with
 * `ifVersion` adds `version = :v` to its `ConditionExpression`, so two processes writing against
 * the same version cannot both apply; when a conditional update or remove is refused, one
 * `GetItem` tells "no live record" from "another version" (a refused conditional set or delete
 * is a conflict without it). An unconditional set is one `UpdateItem` on a live item or a new
 * one, and a second one when it finds an expired item (its version starts over at 1).
 * `versions(ids)` is `BatchGetItem` with a projection (id, version, deadlines), 100 keys per
 * request, its `UnprocessedKeys` sent again within the call as for `BatchWriteItem`. Items past their deadline (by the
 * storage's `now` clock) are never returned, whether or not TTL has deleted them yet. Reads
 * are strongly consistent.
 *
 * A session's principal is its item's `principal` attribute (absent for a session of no user),
 * written in the same request as the rest: the set's `UpdateItem`, and a key change's (`SET` for
 * a new principal, `REMOVE` for none). The `principal-index` global secondary index (partition
 * key `principal`, sort key `createdAt`, projecting the deadlines, version and issuer) is sparse:
 * it holds only the items with a principal, and `findByPrincipal` is one `Query` on it, page
 * after page. That query is eventually consistent on DynamoDB (a global index offers no
 * consistent read): a session written or deleted a moment ago, typically under a second, may be
 * missing from or still in the list. Emulators such as dynalite answer it at once.
 *
 * The storage does not retry: a failed write rejects (in a batch, it is that operation's
 * outcome) and the manager's write queue retries it. The one exception is `BatchWriteItem`'s
 * `UnprocessedItems` (and `BatchGetItem`'s `UnprocessedKeys`), sent again within the same call
 * (3 sends in all, short jittered waits); deletes still unprocessed after that fail as their
 * own outcomes, and `versions` rejects.
 *
 * @example
 * ```ts
 * import { SessionManager } from 'caching-session-manager'
 * import { DynamoDBStorage } from 'caching-session-manager/storages/dynamodb'
 *
 * const storage = new DynamoDBStorage({ clientConfig: { region: 'eu-west-1' }, table: 'sessions' })
 * const manager = new SessionManager({ storage })
 * ```
 */
export class DynamoDBStorage extends AbstractStorage {
  /**
   * Batches, the operators' side, shared by every process on the table, and the principal
   * index (see the class description: eventually consistent). Its limit is
   * DynamoDB's item size, 400 KB: a record's data may take {@link DYNAMODB_MAX_DATA_BYTES} of it,
   * the rest is kept for the id, deadlines, version, issuer and principal. Values are JSON text,
   * so DynamoDB's 32-level nesting of maps does not apply to them.
   */
  readonly capabilities: StorageCapabilities = {
    batch: true,
    admin: true,
    shared: true,
    principals: true,
    limits: { maxDataBytes: DYNAMODB_MAX_DATA_BYTES },
  }
  /**
   * The table in use.
   *
   * @example
   * ```ts
   * new DynamoDBStorage({ table: 'app-sessions' }).table // 'app-sessions'
   * ```
   */
  readonly table: string
  readonly #client: DynamoDBClient
  readonly #ownsClient: boolean
  readonly #createTable: boolean
  readonly #concurrency: number
  #ready: Promise<void> | undefined
  /** The principal index was found `ACTIVE`: `findByPrincipal` queries it without describing the table first. */
  #indexActive = false
  #warnedNoIndex = false

  constructor(options: DynamoDBStorageOptions = {}) {
    knownOptionsCheck(optionsObject(options, OWNER), OWNER, KNOWN)
    super('dynamodb', options, OWNER)
    if (options.client !== undefined && options.clientConfig !== undefined) throw new TypeError(`${OWNER} takes "client" or "clientConfig", not both`)
    const table = options.table ?? 'sessions'
    if (typeof table !== 'string' || !TABLE_NAME.test(table))
      throw new TypeError(`${OWNER} option "table" must be 3 to 255 characters of a-z, A-Z, 0-9, "_", "-" and "."`)
    this.#createTable = booleanOption(options.createTable, OWNER, 'createTable', false)
    this.#concurrency = positiveIntegerOption(options.concurrency, OWNER, 'concurrency', 32)
    if (options.client !== undefined) {
      const client = options.client as Partial<DynamoDBClient> | null
      if (typeof client !== 'object' || client === null || typeof client.send !== 'function')
        throw new TypeError(`${OWNER} option "client" must be a DynamoDBClient`)
      this.#client = options.client
      this.#ownsClient = false
    } else {
      const config = options.clientConfig === undefined ? {} : (options.clientConfig as DynamoDBClientConfig | null)
      if (typeof config !== 'object' || config === null) throw new TypeError(`${OWNER} option "clientConfig" must be an object of DynamoDBClient options`)
      this.#client = new DynamoDBClient({ ...config, maxAttempts: config.maxAttempts ?? 1 })
      this.#ownsClient = true
    }
    this.table = table
  }

  /** Apply the writes of many sessions; one outcome each (see the class description). */
  batch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    return this.applyBatch(operations)
  }

  protected override _open(): Promise<void> | void {
    if (!this.#createTable) return
    // One creation for all concurrent first calls; forgotten on failure so a later call tries again.
    this.#ready ??= createTableIfMissing(this.#client, this.table).then(
      (refused) => {
        if (refused !== undefined) this.#warnNoIndex(`this endpoint would not add it, answering "${refused.message}"`)
      },
      (err: unknown) => {
        this.#ready = undefined
        throw err
      },
    )
    return this.#ready
  }

  /**
   * The table exists (made first with `createTable`) and the client reaches it: one
   * `DescribeTable`, which also finds a table without the principal index (a warning).
   */
  protected override async _check(): Promise<void> {
    if (this.#createTable) return // _open described (or created) it
    if (principalIndexStatus(await describeTable(this.#client, this.table)) === undefined) this.#warnNoIndex('createTable is false, so it is not added')
  }

  /**
   * One `Query` of the principal index, page by page (see the class description: eventually
   * consistent). Rejects with `SESSION_INVALID_STATE` while the table has no such index (the
   * message gives the command that adds it), or while DynamoDB is still filling a new one.
   */
  protected override async _findByPrincipal(principal: string, now: number): Promise<PrincipalSession[]> {
    await this.#principalIndex()
    let items: Item[]
    try {
      items = await queryPrincipal(this.#client, this.table, principal, now)
    } catch (err) {
      // The index may be gone: the next call describes the table again.
      this.#indexActive = false
      throw err
    }
    const sessions: PrincipalSession[] = []
    for (const item of items) {
      const session = toPrincipalSession(item, now)
      if (typeof session === 'string') throw invalidRecord(this.name, session, item['id']?.S ?? '')
      if (session !== undefined) sessions.push(session)
    }
    return sessions
  }

  protected override async _get(id: string, now: number): Promise<SessionRecord | undefined> {
    const { Item: item } = await this.#client.send(new GetItemCommand({ TableName: this.table, Key: key(id), ConsistentRead: true }))
    const record = item === undefined ? undefined : toRecord(item, now)
    if (typeof record === 'string') throw invalidRecord(this.name, record, id)
    return record
  }

  protected override _apply(op: StorageOperation, now: number): Promise<boolean | WriteConflict> {
    return this.#one(op, now)
  }

  /**
   * Unconditional deletes go in `BatchWriteItem` requests of 25; every other operation is its
   * own request (a put could not add to the version, and a batch write carries no condition),
   * `concurrency` at once. Rounds keep each session's operations in order; once one conflicts,
   * the later ones of its session are settled `'conflict'` and never sent.
   */
  protected override async _write(batch: Batch, now: number): Promise<void> {
    for (const round of batch.rounds()) {
      const pending = round.filter(([index]) => batch.isPending(index))
      const deletes = pending.filter(([, op]) => op.type === 'delete' && op.ifVersion === undefined).map(([index, op]) => [index, op.id] as const)
      const others = pending.filter(([, op]) => op.type !== 'delete' || op.ifVersion !== undefined)
      await Promise.all([
        this.#deleteMany(deletes.map(([, id]) => id)).then((errors) => {
          for (const [index, id] of deletes) {
            const error = errors.get(id)
            if (error === undefined) batch.done(index, true)
            else batch.fail(index, error)
          }
        }),
        eachLimit(others, this.#concurrency, async ([index, op]) => {
          try {
            batch.done(index, await this.#one(op, now))
          } catch (err) {
            batch.fail(index, storageError(this.name, 'write a session', err))
          }
        }),
      ])
    }
  }

  /**
   * `BatchGetItem` of the ids' versions and deadlines, 100 keys per request, `concurrency`
   * requests at once; its `UnprocessedKeys` are sent again (as the projection that dynalite
   * leaves out of them), 3 sends in all, and any still left make the call reject.
   */
  protected override async _versions(ids: readonly string[], now: number): Promise<Map<string, number>> {
    const versions = new Map<string, number>()
    const read = async (keys: Item[]): Promise<Item[]> => {
      const result = await this.#client.send(new BatchGetItemCommand({ RequestItems: { [this.table]: versionsRequest(keys) } }))
      for (const item of result.Responses?.[this.table] ?? []) {
        const found = liveVersion(item, now)
        if (found !== undefined) versions.set(...found)
      }
      return result.UnprocessedKeys?.[this.table]?.Keys ?? []
    }
    const failures: unknown[] = []
    await eachLimit(chunks(ids.map(key), BATCH_GET_LIMIT), this.#concurrency, async (group) => {
      try {
        const left = await sendUntilProcessed(read, group)
        if (left.length > 0)
          throw new Error(`BatchGetItem left ${left.length} of ${group.length} keys unprocessed after ${UNPROCESSED_SENDS} sends (throttled)`)
      } catch (err) {
        failures.push(err)
      }
    })
    if (failures.length > 0) throw failures[0]
    return versions
  }

  protected override async _length(now: number): Promise<number> {
    let count = 0
    for await (const page of this.#scan({ Select: 'COUNT', ...liveFilter(now) })) count += page.Count ?? 0
    return count
  }

  /** Items that are not usable records are skipped. */
  protected override async *_all(now: number): AsyncIterable<[string, SessionRecord]> {
    for await (const page of this.#scan(liveFilter(now))) {
      for (const item of page.Items ?? []) {
        const id = item['id']?.S
        const record = toRecord(item, now)
        if (id !== undefined && typeof record === 'object') yield [id, record]
      }
    }
  }

  protected override async _clear(): Promise<void> {
    await this.#deleteScanned({})
  }

  /** DynamoDB's TTL deletes expired items on its own, late (typically within days); this makes it prompt. */
  protected override _cleanup(now: number): Promise<number> {
    return this.#deleteScanned(liveFilter(now, true))
  }

  protected override _close(): void {
    if (this.#ownsClient) this.#client.destroy()
  }

  /** Resolves once the principal index is `ACTIVE` (one `DescribeTable` until it is found so); rejects while it is missing or being filled. */
  async #principalIndex(): Promise<void> {
    if (this.#indexActive) return
    const status = principalIndexStatus(await describeTable(this.#client, this.table))
    if (status === 'ACTIVE') {
      this.#indexActive = true
      return
    }
    if (status === undefined) {
      this.#warnNoIndex(this.#createTable ? 'this endpoint would not add it' : 'createTable is false, so it is not added')
      throw unsupported(
        this.name,
        'findByPrincipal',
        `the table ${this.table} has no "${PRINCIPAL_INDEX}" global secondary index. Add it: ${addIndexCommand(this.table)}`,
      )
    }
    throw unsupported(
      this.name,
      'findByPrincipal',
      `the "${PRINCIPAL_INDEX}" index of the table ${this.table} is ${status} (DynamoDB fills a new index from the table's items); it answers once it is ACTIVE`,
    )
  }

  /** One warning per storage that its table has no principal index, with why it was not added and the command that adds it. */
  #warnNoIndex(why: string): void {
    if (this.#warnedNoIndex) return
    this.#warnedNoIndex = true
    process.emitWarning(
      `${OWNER}: the table ${this.table} has no "${PRINCIPAL_INDEX}" global secondary index (${why}): findByPrincipal() refuses until it is added; sessions keep their "principal" attribute meanwhile, which DynamoDB indexes once the index is added. Add it: ${addIndexCommand(this.table)}`,
      { code: 'DYNAMODB_STORAGE_NO_PRINCIPAL_INDEX' },
    )
  }

  /** One operation, one request (an unconditional set: two when it meets an expired item). */
  async #one(op: StorageOperation, now: number): Promise<boolean | WriteConflict> {
    switch (op.type) {
      case 'set':
        if (op.ifVersion !== undefined)
          return (await this.#conditional(setCommand(this.table, op.id, op.record, op.ifVersion === 0 ? 'none live' : op.ifVersion, now))) || 'conflict'
        return this.#unconditionalSet(op, now)
      case 'delete':
        if (op.ifVersion === undefined) {
          await this.#client.send(new DeleteItemCommand({ TableName: this.table, Key: key(op.id) }))
          return true
        }
        // The condition lets through everything but a live item at another version.
        return (await this.#conditional(deleteCommand(this.table, op.id, op.ifVersion, now))) || 'conflict'
      default:
        if (await this.#conditional(updateCommand(this.table, op, now))) return true
        return op.type === 'touch' || op.ifVersion === undefined ? false : this.#refused(op, now)
    }
  }

  /**
   * A set without `ifVersion`: on a live item or none (the version follows), else, the item
   * being expired, in its place with version 1. An item that comes alive or expires between
   * two tries is tried again, a few times.
   */
  async #unconditionalSet(op: Extract<StorageOperation, { type: 'set' }>, now: number): Promise<true> {
    for (let tries = 0, condition: SetCondition = 'live or none'; tries < SET_TRIES; tries++) {
      if (await this.#conditional(setCommand(this.table, op.id, op.record, condition, now))) return true
      condition = condition === 'live or none' ? 'none live' : 'live or none'
    }
    throw new Error(`the item kept expiring and coming alive while ${SET_TRIES} sets tried to replace it`)
  }

  /** Send a conditional request: `true` when applied, `false` when its condition failed. */
  async #conditional(command: UpdateItemCommand | DeleteItemCommand): Promise<boolean> {
    try {
      await (command instanceof DeleteItemCommand ? this.#client.send(command) : this.#client.send(command))
      return true
    } catch (err) {
      if (errorName(err) === 'ConditionalCheckFailedException') return false
      throw err
    }
  }

  /**
   * The outcome of a conditional update or remove whose condition failed, from the item read
   * after it (see the kit's `refusedWrite`). DynamoDB could return the item with the failure
   * (`ReturnValuesOnConditionCheckFailure`), but emulators such as dynalite do not: one read
   * works everywhere, and is paid only on a refusal.
   */
  async #refused(op: KeyChange, now: number): Promise<boolean | WriteConflict> {
    const { Item: item } = await this.#client.send(new GetItemCommand({ TableName: this.table, Key: key(op.id), ConsistentRead: true }))
    const record = item === undefined ? undefined : toRecord(item, now)
    // An item that is not a usable record is no live record for a key change, as the condition says.
    return refusedWrite(op, typeof record === 'object' ? record : undefined)
  }

  /**
   * Delete `ids` in `BatchWriteItem` requests of 25, each finished by {@link sendUntilProcessed};
   * resolves to the error of each id that was not deleted (its request failed, or it was still
   * unprocessed).
   */
  async #deleteMany(ids: readonly string[]): Promise<Map<string, Error>> {
    const errors = new Map<string, Error>()
    const groups: string[][] = []
    for (let i = 0; i < ids.length; i += BATCH_WRITE_LIMIT) groups.push(ids.slice(i, i + BATCH_WRITE_LIMIT))
    await eachLimit(groups, this.#concurrency, async (group) => {
      try {
        const left = await sendUntilProcessed((requests) => this.#batchWrite(requests), group.map(deleteRequest))
        if (left.length === 0) return
        const error = storageError(
          this.name,
          'delete a session',
          new Error(`BatchWriteItem left ${left.length} of ${group.length} deletes unprocessed after ${UNPROCESSED_SENDS} sends (throttled)`),
        )
        for (const request of left) errors.set(request.DeleteRequest?.Key?.['id']?.S ?? '', error)
      } catch (err) {
        const error = storageError(this.name, 'delete a session', err)
        for (const id of group) errors.set(id, error)
      }
    })
    return errors
  }

  async #batchWrite(requests: WriteRequest[]): Promise<WriteRequest[]> {
    const result = await this.#client.send(new BatchWriteItemCommand({ RequestItems: { [this.table]: requests } }))
    return result.UnprocessedItems?.[this.table] ?? []
  }

  /** Scan ids page by page and delete each page; resolves to how many were deleted. */
  async #deleteScanned(input: Partial<ScanCommandInput>): Promise<number> {
    let deleted = 0
    const names = { ...input.ExpressionAttributeNames, '#id': 'id' }
    for await (const page of this.#scan({ ...input, ProjectionExpression: '#id', ExpressionAttributeNames: names })) {
      const ids = (page.Items ?? []).flatMap((item) => (item['id']?.S === undefined ? [] : [item['id'].S]))
      const first = (await this.#deleteMany(ids)).values().next()
      if (first.done !== true) throw first.value
      deleted += ids.length
    }
    return deleted
  }

  async *#scan(input: Partial<ScanCommandInput>) {
    let start: Item | undefined
    do {
      const page = await this.#client.send(new ScanCommand({ ...input, TableName: this.table, ConsistentRead: true, ExclusiveStartKey: start }))
      yield page
      start = page.LastEvaluatedKey
    } while (start !== undefined)
  }
}
