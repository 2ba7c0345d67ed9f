import test, { type ExecutionContext } from 'ava'
import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionError, isSessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import type { SessionRecordInput, StorageOperation } from '../../src/types.js'
import { DynamoDBStorage, sendUntilProcessed, type DynamoDBStorageOptions } from '../../storages/dynamodb.js'
import { createSessionTable, deleteTable, startDynalite, uniqueTableName } from '../helpers/dynalite.js'
import { storageContract } from '../helpers/storage-contract.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'
import { twoManagersKeepTheirWrites } from '../helpers/two-managers.js'

const HOUR = 3_600_000
const dynamo = await startDynalite()
test.after.always(() => dynamo.close())

function record(data: SessionRecordInput['data'], overrides: Partial<SessionRecordInput> = {}): SessionRecordInput {
  const now = Date.now()
  return { data, createdAt: now, expiresAt: now + HOUR, ...overrides }
}

/** Run `body` with a storage on a fresh table, closed and deleted afterwards. */
async function withStorage(body: (storage: DynamoDBStorage) => Promise<void>, options: Partial<DynamoDBStorageOptions> = {}): Promise<void> {
  const storage = new DynamoDBStorage({ clientConfig: dynamo.clientConfig, table: uniqueTableName(), createTable: true, ...options })
  try {
    await body(storage)
  } finally {
    await storage.close()
    await deleteTable(dynamo.admin, storage.table)
  }
}

async function rawItem(table: string, id: string): Promise<Record<string, AttributeValue> | undefined> {
  return (await dynamo.admin.send(new GetItemCommand({ TableName: table, Key: { id: { S: id } }, ConsistentRead: true }))).Item
}

// This file's own tests run one at a time before the contract suite's (ava runs serial tests
// first): dynalite serves only about 350 requests a second, and the suite's expiry test should
// not wait behind batches of hundreds.
storageContract('dynamodb', {
  // The table is made beforehand, so the suite's expiry test times one request, not a table creation.
  open: async () => {
    const table = uniqueTableName()
    await createSessionTable(dynamo.admin, table)
    return new DynamoDBStorage({ clientConfig: dynamo.clientConfig, table })
  },
  openWithClock: async (now) => {
    const table = uniqueTableName()
    await createSessionTable(dynamo.admin, table)
    return new DynamoDBStorage({ clientConfig: dynamo.clientConfig, table, now })
  },
  dispose: async (storage) => deleteTable(dynamo.admin, (storage as DynamoDBStorage).table),
  // Another client on the same table, as another process would have.
  openTwin: async (storage) => new DynamoDBStorage({ clientConfig: dynamo.clientConfig, table: (storage as DynamoDBStorage).table }),
})

test.serial('dynamodb: options are checked', (t) => {
  t.throws(() => new DynamoDBStorage({ client: dynamo.admin, clientConfig: {} }), { instanceOf: TypeError, message: /"client" or "clientConfig", not both/ })
  t.throws(() => new DynamoDBStorage({ client: {} as never }), { instanceOf: TypeError, message: /"client"/ })
  t.throws(() => new DynamoDBStorage({ client: dynamo.admin, table: 'ab' }), { instanceOf: TypeError, message: /"table"/ })
  t.throws(() => new DynamoDBStorage({ client: dynamo.admin, table: 'no spaces' }), { instanceOf: TypeError, message: /"table"/ })
  t.throws(() => new DynamoDBStorage({ client: dynamo.admin, createTable: 1 as unknown as boolean }), { instanceOf: TypeError, message: /"createTable"/ })
  t.throws(() => new DynamoDBStorage({ client: dynamo.admin, concurrency: 0 }), { instanceOf: TypeError, message: /"concurrency"/ })
  t.throws(() => new DynamoDBStorage({ clientConfig: null as never }), { instanceOf: TypeError, message: /"clientConfig"/ })
})

test.serial('dynamodb: createTable makes an on-demand table keyed by id; dynalite has no TTL to enable', async (t) => {
  await withStorage(async (storage) => {
    t.is(await storage.get(generateId()), undefined)
    const { Table } = await dynamo.admin.send(new DescribeTableCommand({ TableName: storage.table }))
    t.is(Table?.TableStatus, 'ACTIVE')
    t.deepEqual(Table?.KeySchema, [{ AttributeName: 'id', KeyType: 'HASH' }])
    t.is(Table?.BillingModeSummary?.BillingMode, 'PAY_PER_REQUEST')
    // dynalite answers UpdateTimeToLive with UnknownOperationException; the storage warns and goes on.
    const ttl = await dynamo.admin.send(new DescribeTimeToLiveCommand({ TableName: storage.table }))
    t.is(ttl.TimeToLiveDescription?.TimeToLiveStatus, 'DISABLED')
  })
})

test.serial('dynamodb: items hold JSON text per key, epoch-second ttl from the earliest deadline, and a version', async (t) => {
  await withStorage(async (storage) => {
    const id = generateId()
    const now = Date.now()
    await storage.set(
      id,
      record(JSON.parse('{"__proto__":{"p":1},"~tilde":"t","plain":[1]}') as SessionRecordInput['data'], {
        expiresAt: now + 2 * HOUR + 1,
        absoluteExpiresAt: now + HOUR + 1,
      }),
    )
    t.true(await storage.update(id, 'added', 'x', now + HOUR))
    const item = (await rawItem(storage.table, id))!
    t.deepEqual(Object.keys(item['data']!.M!).sort(), ['added', 'plain', '~__proto__', '~~tilde'])
    t.deepEqual(item['data']!.M!['added'], { S: '"x"' })
    t.is(item['version']!.N, '2')
    t.is(item['absoluteExpiresAt']!.N, String(now + HOUR + 1))
    t.is(item['ttl']!.N, String(Math.ceil((now + HOUR) / 1000)), 'the update moved the ttl with the idle deadline')
    const got = (await storage.get(id))!
    t.deepEqual(got.data, JSON.parse('{"__proto__":{"p":1},"~tilde":"t","plain":[1],"added":"x"}'))
    t.true(Object.hasOwn(got.data, '__proto__'))
  })
})

test.serial('dynamodb: values DynamoDB numbers and maps could not hold round-trip exactly', async (t) => {
  await withStorage(async (storage) => {
    const id = generateId()
    let deep: SessionRecordInput['data'][string] = 'bottom'
    for (let i = 0; i < 60; i++) deep = { [`level${i}`]: deep } // DynamoDB nests documents 32 levels at most
    const values = { huge: 1.5e300, tiny: 5e-324, digits: 0.1 + 0.2, negative: -0, empty: '', emptyList: [], emptyObject: {}, emptyKey: { '': 1 }, deep }
    await storage.set(id, record({}))
    for (const [key, value] of Object.entries(values)) t.true(await storage.update(id, key, value, Date.now() + HOUR))
    t.deepEqual((await storage.get(id))!.data, JSON.parse(JSON.stringify(values)))
  })
})

test.serial('dynamodb: items past their deadline are never returned while DynamoDB still holds them, and cleanup deletes them', async (t) => {
  await withStorage(async (storage) => {
    const now = Date.now()
    const live = generateId()
    await storage.set(live, record({ live: true }))
    const expired = Array.from({ length: 60 }, (_, i) => ({
      type: 'set' as const,
      id: generateId(),
      record: record({ i }, i % 2 === 0 ? { expiresAt: now - 1000 } : { absoluteExpiresAt: now - 1000 }),
    }))
    t.true((await storage.batch(expired)).every((outcome) => outcome === true))
    t.truthy(await rawItem(storage.table, expired[0]!.id), 'the table still has the item')
    t.is(await storage.get(expired[0]!.id), undefined)
    t.is(await storage.get(expired[1]!.id), undefined)
    t.false(await storage.touch(expired[0]!.id, now + HOUR))
    t.is(await storage.length(), 1)
    t.is(await storage.cleanup(now), 60)
    t.is(await rawItem(storage.table, expired[0]!.id), undefined)
    t.truthy(await storage.get(live))
  })
})

test.serial('dynamodb: a batch keeps the order of each id across rounds and deletes in groups of 25', async (t) => {
  await withStorage(async (storage) => {
    const ids = Array.from({ length: 70 }, () => generateId())
    const expiresAt = Date.now() + HOUR
    const ops: StorageOperation[] = []
    for (const [i, id] of ids.entries()) {
      ops.push({ type: 'set', id, record: record({ i, gone: true }) })
      ops.push({ type: 'update', id, key: 'i', value: i * 2, expiresAt })
      ops.push({ type: 'remove', id, key: 'gone', expiresAt })
      if (i % 2 === 0) ops.push({ type: 'delete', id }, { type: 'touch', id, expiresAt })
      else ops.push({ type: 'touch', id, expiresAt: expiresAt + i })
    }
    const outcomes = await storage.batch(ops)
    t.is(outcomes.length, ops.length)
    const notApplied = outcomes.flatMap((outcome, index) => (outcome === true ? [] : [[ops[index]!.type, outcome]]))
    t.deepEqual(
      notApplied,
      ids.filter((_, i) => i % 2 === 0).map(() => ['touch', false]),
      'only the touches after a delete find nothing',
    )
    for (const [i, id] of ids.entries()) {
      const got = await storage.get(id)
      if (i % 2 === 0) t.is(got, undefined)
      else t.like(got, { data: { i: i * 2 }, expiresAt: expiresAt + i, version: 3 }, 'set, update and remove count; the touch does not')
    }
  })
})

test.serial('dynamodb: in a batch, a failed operation fails the later ones of its id and no other', async (t) => {
  await withStorage(async (storage) => {
    const tooLarge = generateId()
    const fine = generateId()
    const expiresAt = Date.now() + HOUR
    const outcomes = await storage.batch([
      { type: 'set', id: tooLarge, record: record({ blob: 'x'.repeat(410 * 1024) }) }, // over DynamoDB's 400 KB item limit
      { type: 'set', id: fine, record: record({ a: 1 }) },
      { type: 'update', id: tooLarge, key: 'b', value: 2, expiresAt },
      { type: 'update', id: fine, key: 'b', value: 2, expiresAt },
    ])
    t.true(isSessionError(outcomes[0], 'SESSION_STORAGE_ERROR'))
    t.regex((outcomes[0] as Error).message, /^the dynamodb storage could not write a session$/)
    t.is(((outcomes[0] as Error).cause as Error).name, 'ValidationException')
    t.is(outcomes[2], outcomes[0], 'the later operation of that id was not sent')
    t.deepEqual([outcomes[1], outcomes[3]], [true, true])
    t.is(await rawItem(storage.table, tooLarge), undefined)
    t.deepEqual((await storage.get(fine))!.data, { a: 1, b: 2 })
  })
})

test.serial('dynamodb: two managers on one table each keep their writes to different keys of one session', async (t) => {
  const table = uniqueTableName()
  await createSessionTable(dynamo.admin, table)
  try {
    await twoManagersKeepTheirWrites(t, async () => new DynamoDBStorage({ clientConfig: dynamo.clientConfig, table }))
  } finally {
    await deleteTable(dynamo.admin, table)
  }
})

test.serial('dynamodb: items that are not usable records are absent and reported, never a crash', async (t) => {
  await withStorage(async (storage) => {
    const expiresAt = String(Date.now() + HOUR)
    const meta = { createdAt: { N: '1' }, expiresAt: { N: expiresAt }, version: { N: '1' } }
    const items: Array<[string, Record<string, AttributeValue>, RegExp]> = [
      [generateId(), { data: { M: {} }, expiresAt: { N: expiresAt }, version: { N: '1' } }, /timestamps are missing/],
      [generateId(), { data: { M: {} }, createdAt: { N: '1' }, expiresAt: { N: expiresAt } }, /version is missing/],
      [generateId(), { ...meta, data: { S: '{"a":1}' } }, /data is not a map/],
      [generateId(), { ...meta, data: { M: { a: { N: '1' } } } }, /data is not a map of JSON texts/],
      [generateId(), { ...meta, data: { M: { a: { S: '{"broken' } } } }, /data is not a map of JSON texts/],
    ]
    await storage.length() // creates the table
    for (const [id, item] of items) await dynamo.admin.send(new PutItemCommand({ TableName: storage.table, Item: { id: { S: id }, ...item } }))
    for (const [id, , message] of items) await t.throwsAsync(storage.get(id), { instanceOf: SessionError, message })
    t.false(await storage.update(items[2]![0], 'k', 1, Date.now() + HOUR), 'a key cannot be set in data that is not a map')
    await managerTreatsAsAbsent(t, storage, items[4]![0])
  })
})

test.serial('dynamodb: a missing table or an unreachable endpoint rejects with an error naming the storage, and the manager answers 503', async (t) => {
  const missing = new DynamoDBStorage({ clientConfig: dynamo.clientConfig, table: uniqueTableName() })
  const error = await t.throwsAsync(missing.get(generateId()))
  t.true(isSessionError(error, 'SESSION_STORAGE_ERROR'))
  t.regex(error.message, /^the dynamodb storage could not read a session$/)
  t.is((error.cause as Error).name, 'ResourceNotFoundException')
  await missing.close()

  const down = new DynamoDBStorage({ clientConfig: { ...dynamo.clientConfig, endpoint: 'http://127.0.0.1:1', maxAttempts: 1 } })
  t.true(isSessionError(await t.throwsAsync(down.get(generateId()), { message: /^the dynamodb storage could not read a session$/ }), 'SESSION_STORAGE_ERROR'))
  const outcomes = await down.batch([
    { type: 'delete', id: generateId() },
    { type: 'touch', id: generateId(), expiresAt: Date.now() + HOUR },
  ])
  t.true(outcomes.every((outcome) => isSessionError(outcome, 'SESSION_STORAGE_ERROR') && outcome.message.startsWith('the dynamodb storage could not ')))
  const manager = new SessionManager({ storage: down, identities: [new CookieIdentity()] })
  const unavailable = await t.throwsAsync(manager.load(fakeRequest({ cookie: `sid=${generateId()}` }), new FakeResponse()), { instanceOf: SessionError })
  t.is(unavailable.code, 'SESSION_STORAGE_UNAVAILABLE')
  t.is(unavailable.status, 503)
  await manager.close()
})

test.serial('dynamodb: a client passed in stays usable after close; the storage then rejects', async (t) => {
  const table = uniqueTableName()
  await createSessionTable(dynamo.admin, table)
  try {
    const storage = new DynamoDBStorage({ client: dynamo.admin, table })
    await storage.set(generateId(), record({}))
    await storage.close()
    await storage.close()
    const closed = await t.throwsAsync(storage.length(), { message: /^the dynamodb storage is closed/ })
    t.true(isSessionError(closed, 'SESSION_CLOSED'))
    t.true(((await dynamo.admin.send(new ListTablesCommand({}))).TableNames ?? []).includes(table))
  } finally {
    await deleteTable(dynamo.admin, table)
  }
})

// dynalite never leaves BatchWriteItem items unprocessed, so the retry loop is tested on its own,
// with plain functions standing in for the request and the wait.
test.serial('dynamodb: sendUntilProcessed resends only what was left unprocessed until nothing is', async (t) => {
  const sent: number[][] = []
  const delays: number[] = []
  const left = await sendUntilProcessed(
    async (requests: number[]) => {
      sent.push(requests)
      return requests.slice(Math.ceil(requests.length / 2)) // half of each request is throttled
    },
    [1, 2, 3, 4],
    { sleep: async (ms) => void delays.push(ms), baseDelayMs: 10, maxDelayMs: 1000 },
  )
  t.deepEqual(left, [])
  t.deepEqual(sent, [[1, 2, 3, 4], [3, 4], [4]])
  t.is(delays.length, 2)
  delays.forEach((delay, i) => t.true(delay >= 0 && delay <= 10 * 2 ** (i + 1), `delay ${i} within its doubling cap`))
})

test.serial('dynamodb: sendUntilProcessed gives up after its attempts, capped delays, and passes failures on', async (t) => {
  const delays: number[] = []
  let calls = 0
  const left = await sendUntilProcessed(
    async (requests: string[]) => {
      calls++
      return requests
    },
    ['a', 'b'],
    { attempts: 6, baseDelayMs: 100, maxDelayMs: 250, sleep: async (ms) => void delays.push(ms) },
  )
  t.deepEqual(left, ['a', 'b'])
  t.is(calls, 6)
  t.is(delays.length, 5)
  t.true(delays.every((delay) => delay >= 0 && delay <= 250))
  await t.throwsAsync(
    sendUntilProcessed(() => Promise.reject(new Error('network down')), [1]),
    { message: 'network down' },
  )
  t.deepEqual(await sendUntilProcessed(() => Promise.reject(new Error('never called')), []), [])
})

test.serial('dynamodb: by default a call is finished in 3 sends with short waits; what is left is returned, a failed send is not sent again', async (t) => {
  const delays: number[] = []
  const sleep = async (ms: number): Promise<void> => void delays.push(ms)
  let calls = 0
  const left = await sendUntilProcessed(
    async (requests: string[]) => {
      calls++
      return requests
    },
    ['a', 'b'],
    { sleep },
  )
  t.deepEqual(left, ['a', 'b'], 'still unprocessed: the caller reports them as failed outcomes')
  t.is(calls, 3)
  t.is(delays.length, 2)
  delays.forEach((delay, i) => t.true(delay >= 0 && delay <= Math.min(200, 25 * 2 ** (i + 1)), `delay ${i} is short`))
  let sends = 0
  const throttled = Object.assign(new Error('rate exceeded'), { name: 'ProvisionedThroughputExceededException' })
  await t.throwsAsync(
    sendUntilProcessed(
      async () => {
        sends++
        throw throttled
      },
      [1, 2],
      { sleep },
    ),
    { is: throttled },
  )
  t.is(sends, 1, 'a rejected send is for the write queue to retry')
})

test.serial('dynamodb: the now option decides liveness in reads, conditional writes and scans', async (t) => {
  let now = Date.now() - 10 * HOUR
  await withStorage(
    async (storage) => {
      const id = generateId()
      // Dead by the machine's clock for 9 hours, live by the storage's.
      await storage.set(id, { data: { a: 1 }, createdAt: now, expiresAt: now + HOUR, absoluteExpiresAt: now + 2 * HOUR })
      t.truthy(await storage.get(id))
      t.true(await storage.update(id, 'b', 2, now + HOUR))
      t.true(await storage.remove(id, 'a', now + HOUR))
      t.true(await storage.touch(id, now + 3 * HOUR), 'the absolute deadline has not passed by the storage clock')
      t.is(await storage.length(), 1)
      t.is(await storage.cleanup(), 0)
      now += 2 * HOUR // past the absolute deadline, not the idle one
      t.is(await storage.get(id), undefined)
      t.false(await storage.touch(id, now + HOUR), 'the condition used the storage clock')
      t.is(await storage.length(), 0)
      const listed: string[] = []
      for await (const [listedId] of storage.all()) listed.push(listedId)
      t.deepEqual(listed, [])
      t.is(await storage.cleanup(), 1)
      t.is(await rawItem(storage.table, id), undefined)
    },
    { now: () => now },
  )
})

test.serial('dynamodb: a NULL absoluteExpiresAt is no absolute deadline for reads, conditions and scans alike', async (t) => {
  await withStorage(async (storage) => {
    const id = generateId()
    const expiresAt = Date.now() + HOUR
    await storage.length() // creates the table
    await dynamo.admin.send(
      new PutItemCommand({
        TableName: storage.table,
        Item: {
          id: { S: id },
          data: { M: { a: { S: '1' } } },
          createdAt: { N: '1' },
          expiresAt: { N: String(expiresAt) },
          absoluteExpiresAt: { NULL: true },
          version: { N: '1' },
        },
      }),
    )
    const got = await storage.get(id)
    t.deepEqual(got, { data: { a: 1 }, createdAt: 1, expiresAt, version: 1 })
    t.true(await storage.update(id, 'b', 2, expiresAt))
    t.is(await storage.length(), 1)
    t.is(await storage.cleanup(), 0)
    const broken = generateId()
    await dynamo.admin.send(
      new PutItemCommand({
        TableName: storage.table,
        Item: {
          id: { S: broken },
          data: { M: {} },
          createdAt: { N: '1' },
          expiresAt: { N: String(expiresAt) },
          absoluteExpiresAt: { S: 'soon' },
          version: { N: '1' },
        },
      }),
    )
    await t.throwsAsync(storage.get(broken), { instanceOf: SessionError, message: /absolute deadline is not a number/ })
    t.false(await storage.touch(broken, expiresAt), 'not live for a condition either')
  })
})

async function managerTreatsAsAbsent(t: ExecutionContext, storage: DynamoDBStorage, id: string): Promise<void> {
  // A manager on its own storage: closing it must not close the storage under the test.
  const manager = new SessionManager({
    storage: new DynamoDBStorage({ clientConfig: dynamo.clientConfig, table: storage.table }),
    identities: [new CookieIdentity()],
  })
  const reported: Error[] = []
  manager.on('error', (err) => reported.push(err))
  const session = await manager.load(fakeRequest({ cookie: `sid=${id}` }), new FakeResponse())
  t.true(session.isNew, 'a new session, not the unusable one')
  t.is(reported.length, 1)
  t.is((reported[0] as SessionError).code, 'SESSION_INVALID_RECORD')
  await manager.close()
}
