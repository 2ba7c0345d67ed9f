import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ScanCommand,
  UpdateItemCommand,
  UpdateTimeToLiveCommand,
  type AttributeValue,
  type DynamoDBClientConfig,
  type ScanCommandInput,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb'
import { batchRounds } from '../src/kit/batch.js'
import { SessionError } from '../src/errors.js'
import type { BatchOutcome, JsonValue, SessionData, SessionRecord, SessionRecordInput, Storage, StorageOperation } from '../src/types.js'

/**
 * Options of {@link DynamoDBStorage}. Give `client` or `clientConfig`, or neither for a client
 * configured from the environment (region, credentials) as the AWS SDK does by default.
 *
 * @example
 * ```ts
 * const options: DynamoDBStorageOptions = { clientConfig: { region: 'eu-west-1' }, table: 'sessions', createTable: true }
 * ```
 */
export interface DynamoDBStorageOptions {
  /** A client you own: the storage uses it and never destroys it. */
  client?: DynamoDBClient
  /** Configuration of a client the storage makes (and destroys on `close`). */
  clientConfig?: DynamoDBClientConfig
  /** Table name: 3 to 255 of `a-z A-Z 0-9 _ - .`. Its partition key is `id` (string). Default `'sessions'`. */
  table?: string
  /**
   * Create the table (on-demand capacity, TTL on the `ttl` attribute) on first use when it is
   * missing, and wait until it is active. Default `false`: tables are usually made by
   * infrastructure code.
   */
  createTable?: boolean
  /** Requests a batch, `clear` or `cleanup` keeps in flight at once. Default 32. */
  concurrency?: number
}

/**
 * How {@link sendUntilProcessed} retries: `attempts` sends in all, and between two sends a
 * random delay of up to `baseDelayMs * 2 ** attempt`, capped at `maxDelayMs` ("full jitter").
 */
export interface RetryOptions {
  /** Sends in all, the first included. Default 8. */
  attempts?: number
  /** Default 50. */
  baseDelayMs?: number
  /** Default 2000. */
  maxDelayMs?: number
  /** How to wait; tests pass one that records the delay. Default a timer. */
  sleep?: (ms: number) => Promise<void>
}

const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/
/** BatchWriteItem takes at most 25 requests. */
const BATCH_WRITE_LIMIT = 25
const ONE: AttributeValue = { N: '1' }
const MAP_TYPE: AttributeValue = { S: 'M' }
const LIVE = 'attribute_exists(#id) AND #e > :now AND (attribute_not_exists(#a) OR #a > :now)'
const BASE_NAMES = { '#id': 'id', '#e': 'expiresAt', '#a': 'absoluteExpiresAt', '#ttl': 'ttl', '#v': 'version' } as const
let warnedNoTtl = false

type Item = Record<string, AttributeValue>
type Change = Extract<StorageOperation, { type: 'update' | 'remove' | 'touch' | 'set' }>

/**
 * Keeps sessions in a DynamoDB table through the AWS SDK v3. One item per session: `id` (the
 * partition key), `data` (a map of key → the value's JSON text), `createdAt`, `expiresAt`,
 * `absoluteExpiresAt` (epoch ms), `version`, and `ttl` (epoch seconds of the deadline) so
 * DynamoDB's TTL deletes expired items. `update`, `remove` and `touch` are one conditional
 * `UpdateItem` each on a path of the map, never a read-modify-write, so processes writing
 * different keys of one session all keep their writes. Items past their deadline are never
 * returned, whether or not TTL has deleted them yet. Reads are strongly consistent.
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
export class DynamoDBStorage implements Storage {
  /**
   * `'dynamodb'`, the name used in error messages.
   *
   * @example
   * ```ts
   * new DynamoDBStorage({ table: 'sessions' }).name // 'dynamodb'
   * ```
   */
  readonly name = 'dynamodb'
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
  #closed = false

  constructor(options: DynamoDBStorageOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('DynamoDBStorage options must be an object')
    if (options.client !== undefined && options.clientConfig !== undefined) throw new TypeError('DynamoDBStorage takes "client" or "clientConfig", not both')
    const table = options.table ?? 'sessions'
    if (typeof table !== 'string' || !TABLE_NAME.test(table))
      throw new TypeError('DynamoDBStorage option "table" must be 3 to 255 characters of a-z, A-Z, 0-9, "_", "-" and "."')
    if (options.createTable !== undefined && typeof options.createTable !== 'boolean')
      throw new TypeError('DynamoDBStorage option "createTable" must be a boolean')
    const concurrency = options.concurrency ?? 32
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError('DynamoDBStorage option "concurrency" must be a positive integer')
    if (options.client !== undefined) {
      const client = options.client as Partial<DynamoDBClient> | null
      if (typeof client !== 'object' || client === null || typeof client.send !== 'function')
        throw new TypeError('DynamoDBStorage option "client" must be a DynamoDBClient')
      this.#client = options.client
      this.#ownsClient = false
    } else {
      if (options.clientConfig !== undefined && (typeof options.clientConfig !== 'object' || options.clientConfig === null)) {
        throw new TypeError('DynamoDBStorage option "clientConfig" must be an object of DynamoDBClient options')
      }
      this.#client = new DynamoDBClient(options.clientConfig ?? {})
      this.#ownsClient = true
    }
    this.table = table
    this.#createTable = options.createTable ?? false
    this.#concurrency = concurrency
  }

  /**
   * The live record of `id` (a strongly consistent read), or `undefined` when there is none or
   * its deadline has passed. An item without usable data or timestamps rejects with
   * `SESSION_INVALID_RECORD`.
   *
   * @example
   * ```ts
   * const record = await storage.get(id) // { data, createdAt, expiresAt, version } or undefined
   * ```
   */
  async get(id: string): Promise<SessionRecord | undefined> {
    const result = await this.#run('get', () => this.#client.send(new GetItemCommand({ TableName: this.table, Key: key(id), ConsistentRead: true })))
    return result.Item === undefined ? undefined : this.#toRecord(result.Item, Date.now())
  }

  /**
   * Create or replace the whole record of `id` (an `UpdateItem` that replaces every attribute
   * and adds one to the version).
   *
   * @example
   * ```ts
   * await storage.set(id, { data: { user: 'ada' }, createdAt: Date.now(), expiresAt: Date.now() + 3_600_000 })
   * ```
   */
  async set(id: string, record: SessionRecordInput): Promise<void> {
    await this.#write('set', this.#setCommand(id, record))
  }

  /**
   * Set one key of a live record (`SET data.#key`) and move its idle deadline, on condition
   * that the item is live. Resolves `false` when there is no live record.
   *
   * @example
   * ```ts
   * await storage.update(id, 'cart', { items: 3 }, Date.now() + 3_600_000) // true
   * ```
   */
  update(id: string, key: string, value: JsonValue, expiresAt: number): Promise<boolean> {
    return this.#write('update', this.#updateCommand({ type: 'update', id, key, value, expiresAt }))
  }

  /**
   * Remove one key of a live record (`REMOVE data.#key`) and move its idle deadline.
   * Resolves `false` when there is no live record.
   *
   * @example
   * ```ts
   * await storage.remove(id, 'cart', Date.now() + 3_600_000) // true
   * ```
   */
  remove(id: string, key: string, expiresAt: number): Promise<boolean> {
    return this.#write('remove', this.#updateCommand({ type: 'remove', id, key, expiresAt }))
  }

  /**
   * Delete the item of `id`; deleting a missing one succeeds.
   *
   * @example
   * ```ts
   * await storage.delete(id)
   * ```
   */
  async delete(id: string): Promise<void> {
    await this.#run('delete', () => this.#client.send(new DeleteItemCommand({ TableName: this.table, Key: key(id) })))
  }

  /**
   * Move the idle deadline (and `ttl`) of a live record; the data is not sent.
   * Resolves `false` when there is no live record.
   *
   * @example
   * ```ts
   * await storage.touch(id, Date.now() + 3_600_000) // true
   * ```
   */
  touch(id: string, expiresAt: number): Promise<boolean> {
    return this.#write('touch', this.#updateCommand({ type: 'touch', id, expiresAt }))
  }

  /**
   * Apply the writes of many sessions: deletes go in `BatchWriteItem` requests of 25 (items
   * left unprocessed are retried with backoff), every other operation is its own `UpdateItem`
   * (BatchWriteItem can only put or delete, and a put could not add to the version), up to
   * `concurrency` at once. Operations on the same id run one after another in array order; once
   * one fails, the later ones of that id get the same error without being sent.
   *
   * @example
   * ```ts
   * const outcomes = await storage.batch([
   *   { type: 'set', id: a, record },
   *   { type: 'update', id: b, key: 'views', value: 2, expiresAt },
   *   { type: 'delete', id: c },
   * ]) // [true, true, true]
   * ```
   */
  async batch(operations: readonly StorageOperation[]): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = operations.map(() => false)
    const failed = new Map<string, Error>()
    for (const round of batchRounds(operations)) {
      const deletes: Array<[number, string]> = []
      const changes: Array<[number, Change]> = []
      for (const [index, op] of round) {
        const earlier = failed.get(op.id)
        if (earlier !== undefined) outcomes[index] = earlier
        else if (op.type === 'delete') deletes.push([index, op.id])
        else changes.push([index, op])
      }
      const deleting = this.#deleteMany(deletes.map(([, id]) => id)).then((errors) =>
        deletes.forEach(([index, id]) => {
          const error = errors.get(id)
          outcomes[index] = error ?? true
          if (error !== undefined) failed.set(id, error)
        }),
      )
      const changing = eachLimit(changes, this.#concurrency, async ([index, op]) => {
        try {
          outcomes[index] = await this.#applyChange(op)
        } catch (err) {
          const error = err instanceof Error ? err : new Error(String(err))
          outcomes[index] = error
          failed.set(op.id, error)
        }
      })
      await Promise.all([deleting, changing])
    }
    return outcomes
  }

  /**
   * Number of live items (a paginated, consistent `Scan` with `Select: COUNT`).
   *
   * @example
   * ```ts
   * console.log(`${await storage.length()} live sessions`)
   * ```
   */
  async length(): Promise<number> {
    let count = 0
    for await (const page of this.#scan('length', { Select: 'COUNT', ...liveFilter(Date.now()) })) count += page.Count ?? 0
    return count
  }

  /**
   * Every live record with its id (a paginated, consistent `Scan`). Items that are not usable
   * records are skipped.
   *
   * @example
   * ```ts
   * for await (const [id, record] of storage.all()) console.log(id, record.data)
   * ```
   */
  async *all(): AsyncIterable<[string, SessionRecord]> {
    const now = Date.now()
    for await (const page of this.#scan('all', liveFilter(now))) {
      for (const item of page.Items ?? []) {
        const id = item['id']?.S
        if (id === undefined) continue
        let record: SessionRecord | undefined
        try {
          record = this.#toRecord(item, now)
        } catch {
          continue
        }
        if (record !== undefined) yield [id, record]
      }
    }
  }

  /**
   * Delete every item: a `Scan` of the ids, page by page, each page deleted in
   * `BatchWriteItem` requests of 25.
   *
   * @example
   * ```ts
   * await storage.clear()
   * ```
   */
  async clear(): Promise<void> {
    await this.#deleteScanned('clear', {})
  }

  /**
   * Delete items whose deadline passed at `now` (default: the current time), page by page in
   * `BatchWriteItem` requests of 25; resolves to how many. DynamoDB's TTL does the same on its
   * own, late (typically within days); this makes it prompt.
   *
   * @example
   * ```ts
   * const removed = await storage.cleanup()
   * ```
   */
  cleanup(now: number = Date.now()): Promise<number> {
    return this.#deleteScanned('cleanup', {
      FilterExpression: '#e <= :now OR #a <= :now',
      ExpressionAttributeNames: { '#e': BASE_NAMES['#e'], '#a': BASE_NAMES['#a'] },
      ExpressionAttributeValues: { ':now': number(now) },
    })
  }

  /**
   * Destroy the client if the storage made it (a client passed in stays usable). Idempotent;
   * later calls reject.
   *
   * @example
   * ```ts
   * await storage.close()
   * ```
   */
  close(): Promise<void> {
    if (!this.#closed && this.#ownsClient) this.#client.destroy()
    this.#closed = true
    return Promise.resolve()
  }

  /** Run `work` once the table is there, turning any failure into an error that names this storage. */
  async #run<T>(action: string, work: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error(`dynamodb storage: ${action} failed: the storage is closed`)
    try {
      await this.#ensureTable()
      return await work()
    } catch (err) {
      throw storageError(action, err)
    }
  }

  /** A conditional write: `true` when applied, `false` when its condition (a live item) failed. */
  async #write(action: string, command: UpdateItemCommand): Promise<boolean> {
    try {
      await this.#run(action, () => this.#client.send(command))
      return true
    } catch (err) {
      if (err instanceof Error && errorName(err.cause) === 'ConditionalCheckFailedException') return false
      throw err
    }
  }

  #applyChange(op: Change): Promise<boolean> {
    return this.#write(op.type, op.type === 'set' ? this.#setCommand(op.id, op.record) : this.#updateCommand(op))
  }

  #setCommand(id: string, record: SessionRecordInput): UpdateItemCommand {
    const data: Record<string, AttributeValue> = {}
    for (const [name, value] of Object.entries(record.data)) data[encodeKey(name)] = { S: JSON.stringify(value) }
    const absolute = record.absoluteExpiresAt
    const deadline = absolute === undefined ? record.expiresAt : Math.min(record.expiresAt, absolute)
    const values: Item = { ':d': { M: data }, ':c': number(record.createdAt), ':e': number(record.expiresAt), ':ttl': ttl(deadline), ':one': ONE }
    if (absolute !== undefined) values[':a'] = number(absolute)
    return new UpdateItemCommand({
      TableName: this.table,
      Key: key(id),
      UpdateExpression: `SET #d = :d, #c = :c, #e = :e, #ttl = :ttl${absolute === undefined ? ' REMOVE #a' : ', #a = :a'} ADD #v :one`,
      ExpressionAttributeNames: {
        '#d': 'data',
        '#c': 'createdAt',
        '#e': BASE_NAMES['#e'],
        '#a': BASE_NAMES['#a'],
        '#ttl': BASE_NAMES['#ttl'],
        '#v': BASE_NAMES['#v'],
      },
      ExpressionAttributeValues: values,
    })
  }

  /**
   * An update, remove or touch, on condition that the item is live (and, to change a key, that
   * its data is a map). The TTL follows the idle deadline, which the manager never sets past
   * the absolute one.
   */
  #updateCommand(op: Extract<StorageOperation, { type: 'update' | 'remove' | 'touch' }>): UpdateItemCommand {
    const now = Date.now()
    const names: Record<string, string> = { ...BASE_NAMES }
    const values: Item = { ':e': number(op.expiresAt), ':ttl': ttl(op.expiresAt), ':one': ONE, ':now': number(now) }
    let update = 'SET #e = :e, #ttl = :ttl ADD #v :one'
    let condition = LIVE
    if (op.type !== 'touch') {
      names['#d'] = 'data'
      names['#k'] = encodeKey(op.key)
      values[':map'] = MAP_TYPE
      condition += ' AND attribute_type(#d, :map)'
      if (op.type === 'update') {
        values[':v'] = { S: JSON.stringify(op.value) }
        update = 'SET #d.#k = :v, #e = :e, #ttl = :ttl ADD #v :one'
      } else {
        update = 'REMOVE #d.#k SET #e = :e, #ttl = :ttl ADD #v :one'
      }
    }
    return new UpdateItemCommand({
      TableName: this.table,
      Key: key(op.id),
      UpdateExpression: update,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    })
  }

  /** Delete `ids` in BatchWriteItem requests; resolves to the error of each id that was not deleted. */
  async #deleteMany(ids: readonly string[]): Promise<Map<string, Error>> {
    const errors = new Map<string, Error>()
    const groups: string[][] = []
    for (let i = 0; i < ids.length; i += BATCH_WRITE_LIMIT) groups.push(ids.slice(i, i + BATCH_WRITE_LIMIT))
    await eachLimit(groups, this.#concurrency, async (group) => {
      try {
        const left = await this.#run('batch delete', () => sendUntilProcessed((requests) => this.#batchWrite(requests), group.map(deleteRequest)))
        if (left.length > 0) {
          const error = new Error(`dynamodb storage: batch delete failed: ${left.length} deletes were still unprocessed (throttled) after every retry`)
          for (const request of left) errors.set(request.DeleteRequest?.Key?.['id']?.S ?? '', error)
        }
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err))
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
  async #deleteScanned(action: string, filter: Partial<ScanCommandInput>): Promise<number> {
    let deleted = 0
    for await (const page of this.#scan(action, {
      ...filter,
      ProjectionExpression: '#id',
      ExpressionAttributeNames: { ...filter.ExpressionAttributeNames, '#id': 'id' },
    })) {
      const ids = (page.Items ?? []).flatMap((item) => (item['id']?.S === undefined ? [] : [item['id'].S]))
      const errors = await this.#deleteMany(ids)
      const first = errors.values().next()
      if (!first.done) throw first.value
      deleted += ids.length
    }
    return deleted
  }

  async *#scan(action: string, input: Partial<ScanCommandInput>) {
    let start: Item | undefined
    do {
      const page = await this.#run(action, () =>
        this.#client.send(new ScanCommand({ ...input, TableName: this.table, ConsistentRead: true, ExclusiveStartKey: start })),
      )
      yield page
      start = page.LastEvaluatedKey
    } while (start !== undefined)
  }

  #ensureTable(): Promise<void> {
    if (!this.#createTable) return Promise.resolve()
    // One creation for all concurrent first calls; forgotten on failure so a later call retries.
    this.#ready ??= this.#createIfMissing().catch((err: unknown) => {
      this.#ready = undefined
      throw err
    })
    return this.#ready
  }

  async #createIfMissing(): Promise<void> {
    try {
      const described = await this.#client.send(new DescribeTableCommand({ TableName: this.table }))
      if (described.Table?.TableStatus !== 'ACTIVE') await this.#waitUntilActive()
      return
    } catch (err) {
      if (errorName(err) !== 'ResourceNotFoundException') throw err
    }
    try {
      await this.#client.send(
        new CreateTableCommand({
          TableName: this.table,
          AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      )
    } catch (err) {
      // Another process created it first: wait for it like our own.
      if (errorName(err) !== 'ResourceInUseException') throw err
    }
    await this.#waitUntilActive()
    await this.#enableTtl()
  }

  async #waitUntilActive(): Promise<void> {
    const deadline = Date.now() + 300_000
    for (let delay = 50; ; delay = Math.min(delay * 2, 2000)) {
      const described = await this.#client.send(new DescribeTableCommand({ TableName: this.table }))
      if (described.Table?.TableStatus === 'ACTIVE') return
      if (Date.now() + delay > deadline) throw new Error(`table ${this.table} is still ${described.Table?.TableStatus ?? 'missing'} after 5 minutes`)
      await sleep(delay)
    }
  }

  async #enableTtl(): Promise<void> {
    try {
      await this.#client.send(new UpdateTimeToLiveCommand({ TableName: this.table, TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true } }))
    } catch (err) {
      // Emulators such as dynalite lack UpdateTimeToLive; sessions still expire on read and through cleanup().
      if (errorName(err) !== 'UnknownOperationException') throw err
      if (!warnedNoTtl) {
        warnedNoTtl = true
        process.emitWarning(
          `this DynamoDB endpoint does not support UpdateTimeToLive, so table ${this.table} has no TTL; expired sessions stay until cleanup() deletes them`,
          { code: 'DYNAMODB_STORAGE_NO_TTL' },
        )
      }
    }
  }

  /** The record of a live item, `undefined` for an expired one; throws `SESSION_INVALID_RECORD` when unusable. */
  #toRecord(item: Item, now: number): SessionRecord | undefined {
    const createdAt = Number(item['createdAt']?.N)
    const expiresAt = Number(item['expiresAt']?.N)
    const absoluteText = item['absoluteExpiresAt']?.N
    const absolute = absoluteText === undefined ? undefined : Number(absoluteText)
    const version = Number(item['version']?.N)
    let problem: string | undefined
    if (!Number.isFinite(createdAt) || !Number.isFinite(expiresAt) || (absolute !== undefined && !Number.isFinite(absolute)))
      problem = 'its timestamps are missing'
    else if (!Number.isInteger(version)) problem = 'its version is missing'
    if (problem === undefined) {
      if (now >= expiresAt || (absolute !== undefined && now >= absolute)) return undefined
      const data = decodeData(item['data'])
      if (data === undefined) problem = 'its data is not a map of JSON texts'
      else {
        const record: SessionRecord = { data, createdAt, expiresAt, version }
        if (absolute !== undefined) record.absoluteExpiresAt = absolute
        return record
      }
    }
    throw new SessionError('SESSION_INVALID_RECORD', `dynamodb storage: an item of table ${this.table} is not a usable session record (${problem})`)
  }
}

/**
 * Send `requests` with `send`, which resolves to the requests left unprocessed, until none are
 * left or `attempts` sends were made, waiting a jittered, doubling delay between sends (how AWS
 * asks callers to retry BatchWriteItem's `UnprocessedItems`). Resolves to what is still
 * unprocessed (empty when everything landed); a rejection of `send` is passed on.
 *
 * @internal Exported for its tests; not part of the storage's API.
 * @example
 * ```ts
 * const left = await sendUntilProcessed((requests) => writeAndReturnUnprocessed(requests), requests, { attempts: 5 })
 * ```
 */
export async function sendUntilProcessed<T>(send: (requests: T[]) => Promise<T[]>, requests: readonly T[], options: RetryOptions = {}): Promise<T[]> {
  const attempts = options.attempts ?? 8
  const baseDelayMs = options.baseDelayMs ?? 50
  const maxDelayMs = options.maxDelayMs ?? 2000
  const wait = options.sleep ?? sleep
  let pending = [...requests]
  for (let attempt = 1; pending.length > 0; attempt++) {
    pending = await send(pending)
    if (pending.length === 0 || attempt >= attempts) break
    await wait(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt))
  }
  return pending
}

/**
 * Map keys are the session's keys, except that `__proto__` and keys starting with `~` get a `~`
 * in front. The SDK sends a `__proto__` map key intact, but JavaScript code that copies maps by
 * assignment sets the prototype instead and the key vanishes: dynalite 4 does so on PutItem and
 * on `SET #d = :map`, and so would any such consumer of the table.
 */
function encodeKey(name: string): string {
  return name === '__proto__' || name.startsWith('~') ? `~${name}` : name
}

function decodeKey(stored: string): string {
  return stored.startsWith('~') ? stored.slice(1) : stored
}

/**
 * The data of an item: each value is JSON text, so every JSON value round-trips exactly (a
 * DynamoDB number holds only 38 digits up to 1e126, and nests only 32 levels). Parsed as one
 * JSON text so keys like `__proto__` become own properties.
 */
function decodeData(attribute: AttributeValue | undefined): SessionData | undefined {
  const map = attribute?.M
  if (map === undefined) return undefined
  let json = '{'
  for (const [stored, value] of Object.entries(map)) {
    if (value.S === undefined) return undefined
    json += (json.length > 1 ? ',' : '') + JSON.stringify(decodeKey(stored)) + ':' + value.S
  }
  try {
    const data = JSON.parse(json + '}') as unknown
    return typeof data === 'object' && data !== null ? (data as SessionData) : undefined
  } catch {
    return undefined
  }
}

function key(id: string): Item {
  return { id: { S: id } }
}

function deleteRequest(id: string): WriteRequest {
  return { DeleteRequest: { Key: key(id) } }
}

function number(value: number): AttributeValue {
  return { N: String(value) }
}

/** DynamoDB's TTL reads epoch seconds. */
function ttl(deadlineMs: number): AttributeValue {
  return { N: String(Math.ceil(deadlineMs / 1000)) }
}

function liveFilter(now: number): Partial<ScanCommandInput> {
  return {
    FilterExpression: '#e > :now AND (attribute_not_exists(#a) OR #a > :now)',
    ExpressionAttributeNames: { '#e': BASE_NAMES['#e'], '#a': BASE_NAMES['#a'] },
    ExpressionAttributeValues: { ':now': number(now) },
  }
}

/** Run `work` on every item, at most `limit` at once; `work` must not reject. */
async function eachLimit<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined
}

function storageError(action: string, err: unknown): Error {
  if (err instanceof SessionError) return err
  if (err instanceof Error && err.message.startsWith('dynamodb storage: ')) return err
  const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
  return new Error(`dynamodb storage: ${action} failed: ${reason}`, { cause: err })
}
