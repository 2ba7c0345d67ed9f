import {
  BatchWriteItemCommand,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  ScanCommand,
  type DynamoDBClientConfig,
  type ScanCommandInput,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb'
import { AbstractStorage, booleanOption, invalidRecord, positiveIntegerOption, storageError, type AbstractStorageOptions } from '../src/kit/index.js'
import type { Batch, BatchOutcome, SessionRecord, StorageCapabilities, StorageOperation } from '../src/kit/index.js'
import { deleteRequest, key, liveFilter, setCommand, toRecord, updateCommand, type Change, type Item } from './dynamodb/items.js'
import { createTableIfMissing, errorName } from './dynamodb/table.js'

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
   * Create the table (on-demand capacity, TTL on the `ttl` attribute) on first use when it is
   * missing, and wait until it is active. Default `false`: tables are usually made by
   * infrastructure code.
   */
  createTable?: boolean
  /** Requests a batch, `clear` or `cleanup` keeps in flight at once. Default 32. */
  concurrency?: number
}

/**
 * How {@link sendUntilProcessed} finishes one call: `attempts` sends in all, and between two
 * sends a random delay of up to `baseDelayMs * 2 ** attempt`, capped at `maxDelayMs` ("full jitter").
 */
export interface RetryOptions {
  /** Sends in all, the first included. Default 3. */
  attempts?: number
  /** Default 25. */
  baseDelayMs?: number
  /** Default 200. */
  maxDelayMs?: number
  /** How to wait; tests pass one that records the delay. Default a timer. */
  sleep?: (ms: number) => Promise<void>
}

const OWNER = 'DynamoDBStorage'
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/
/** BatchWriteItem takes at most 25 requests. */
const BATCH_WRITE_LIMIT = 25
/** Sends of one BatchWriteItem call, the first included, before what is left unprocessed fails. */
const UNPROCESSED_SENDS = 3

/**
 * Keeps sessions in a DynamoDB table through the AWS SDK v3. One item per session: `id` (the
 * partition key), `data` (a map of key → the value's JSON text), `createdAt`, `expiresAt`,
 * `absoluteExpiresAt` (epoch ms), `version`, and `ttl` (epoch seconds of the deadline) so
 * DynamoDB's TTL deletes expired items. `update`, `remove` and `touch` are one conditional
 * `UpdateItem` each on a path of the map, never a read-modify-write, so processes writing
 * different keys of one session all keep their writes. Items past their deadline (by the
 * storage's `now` clock) are never returned, whether or not TTL has deleted them yet. Reads
 * are strongly consistent.
 *
 * The storage does not retry: a failed write rejects (in a batch, it is that operation's
 * outcome) and the manager's write queue retries it. The one exception is `BatchWriteItem`'s
 * `UnprocessedItems`, sent again within the same call (3 sends in all, short jittered waits);
 * deletes still unprocessed after that fail as their own outcomes.
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
  /** Batches, the operators' side, and shared by every process on the table. */
  readonly capabilities: StorageCapabilities = { batch: true, admin: true, shared: true }
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

  constructor(options: DynamoDBStorageOptions = {}) {
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
    this.#ready ??= createTableIfMissing(this.#client, this.table).catch((err: unknown) => {
      this.#ready = undefined
      throw err
    })
    return this.#ready
  }

  protected override async _get(id: string, now: number): Promise<SessionRecord | undefined> {
    const { Item: item } = await this.#client.send(new GetItemCommand({ TableName: this.table, Key: key(id), ConsistentRead: true }))
    const record = item === undefined ? undefined : toRecord(item, now)
    if (typeof record === 'string') throw invalidRecord(this.name, record, id)
    return record
  }

  protected override async _apply(op: StorageOperation, now: number): Promise<boolean> {
    if (op.type !== 'delete') return this.#change(op, now)
    await this.#client.send(new DeleteItemCommand({ TableName: this.table, Key: key(op.id) }))
    return true
  }

  /**
   * Deletes go in `BatchWriteItem` requests of 25; every other operation is its own
   * `UpdateItem` (a put could not add to the version), `concurrency` at once. Rounds keep each
   * session's operations in order.
   */
  protected override async _write(batch: Batch, now: number): Promise<void> {
    for (const round of batch.rounds()) {
      const pending = round.filter(([index]) => batch.isPending(index))
      const deletes = pending.filter(([, op]) => op.type === 'delete').map(([index, op]) => [index, op.id] as const)
      const changes = pending.filter((entry): entry is [number, Change] => entry[1].type !== 'delete')
      await Promise.all([
        this.#deleteMany(deletes.map(([, id]) => id)).then((errors) => {
          for (const [index, id] of deletes) {
            const error = errors.get(id)
            if (error === undefined) batch.done(index, true)
            else batch.fail(index, error)
          }
        }),
        eachLimit(changes, this.#concurrency, async ([index, op]) => {
          try {
            batch.done(index, await this.#change(op, now))
          } catch (err) {
            batch.fail(index, storageError(this.name, 'write a session', err))
          }
        }),
      ])
    }
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

  /** A conditional `UpdateItem`: `true` when applied, `false` when its condition (a live item) failed. */
  async #change(op: Change, now: number): Promise<boolean> {
    try {
      await this.#client.send(op.type === 'set' ? setCommand(this.table, op.id, op.record) : updateCommand(this.table, op, now))
      return true
    } catch (err) {
      if (errorName(err) === 'ConditionalCheckFailedException') return false
      throw err
    }
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

/**
 * Send `requests` with `send`, which resolves to the requests left unprocessed, until none are
 * left or `attempts` sends were made, waiting a short jittered, doubling delay between sends
 * (how AWS asks callers to finish a `BatchWriteItem`). Resolves to what is still unprocessed
 * (empty when everything landed); a rejection of `send` is passed on, never retried.
 *
 * @internal Exported for its tests; not part of the storage's API.
 * @example
 * ```ts
 * const left = await sendUntilProcessed((requests) => writeAndReturnUnprocessed(requests), requests)
 * ```
 */
export async function sendUntilProcessed<T>(send: (requests: T[]) => Promise<T[]>, requests: readonly T[], options: RetryOptions = {}): Promise<T[]> {
  const { attempts = UNPROCESSED_SENDS, baseDelayMs = 25, maxDelayMs = 200, sleep: wait = sleep } = options
  let pending = [...requests]
  for (let attempt = 1; pending.length > 0; attempt++) {
    pending = await send(pending)
    if (pending.length === 0 || attempt >= attempts) break
    await wait(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt))
  }
  return pending
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
