import test, { type ExecutionContext } from 'ava'
import { DescribeTableCommand, GetItemCommand, QueryCommand, type AttributeValue } from '@aws-sdk/client-dynamodb'
import { isSessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import type { SessionRecordInput } from '../../src/types.js'
import { DynamoDBStorage, type DynamoDBStorageOptions } from '../../storages/dynamodb.js'
import { queryPrincipal } from '../../storages/dynamodb/principals.js'
import { createSessionTable, deleteTable, startDynalite, uniqueTableName } from '../helpers/dynalite.js'

const HOUR = 3_600_000
const INDEX = 'principal-index'
const dynamo = await startDynalite({ indexBackfillMs: 400 })
test.after.always(() => dynamo.close())

function record(principal: string | undefined, overrides: Partial<SessionRecordInput> = {}): SessionRecordInput {
  const now = Date.now()
  return { data: { userId: principal ?? null }, createdAt: now, expiresAt: now + HOUR, ...(principal === undefined ? {} : { principal }), ...overrides }
}

/** Run `body` with a storage on `table` (a fresh one made by the storage when absent), closed and the table deleted afterwards. */
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

/** The ids DynamoDB's principal index holds for `principal`, read past the storage. */
async function indexed(table: string, principal: string): Promise<string[]> {
  const { Items } = await dynamo.admin.send(
    new QueryCommand({
      TableName: table,
      IndexName: INDEX,
      KeyConditionExpression: '#p = :p',
      ExpressionAttributeNames: { '#p': 'principal' },
      ExpressionAttributeValues: { ':p': { S: principal } },
    }),
  )
  return (Items ?? []).map((item) => item['id']!.S!)
}

async function indexStatus(table: string): Promise<string | undefined> {
  const { Table } = await dynamo.admin.send(new DescribeTableCommand({ TableName: table }))
  return Table?.GlobalSecondaryIndexes?.find((index) => index.IndexName === INDEX)?.IndexStatus
}

/** Collect the process warnings of `code` that name `table` until the test ends. */
function warningsAbout(t: ExecutionContext, table: string, code = 'DYNAMODB_STORAGE_NO_PRINCIPAL_INDEX'): string[] {
  const warnings: string[] = []
  const onWarning = (warning: Error & { code?: string }): void => {
    if (warning.code === code && warning.message.includes(table)) warnings.push(warning.message)
  }
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  return warnings
}

test.serial('dynamodb: createTable makes the sparse principal index: principal (S) then createdAt (N), projecting what a listed session shows', async (t) => {
  await withStorage(async (storage) => {
    const [ada, nobody] = [generateId(), generateId()]
    await storage.set(ada, record('ada', { issuer: 'cookie:sid' }))
    await storage.set(nobody, record(undefined))
    const { Table } = await dynamo.admin.send(new DescribeTableCommand({ TableName: storage.table }))
    const index = Table?.GlobalSecondaryIndexes?.find((candidate) => candidate.IndexName === INDEX)
    t.is(index?.IndexStatus, 'ACTIVE')
    t.deepEqual(index?.KeySchema, [
      { AttributeName: 'principal', KeyType: 'HASH' },
      { AttributeName: 'createdAt', KeyType: 'RANGE' },
    ])
    t.deepEqual(index?.Projection, { ProjectionType: 'INCLUDE', NonKeyAttributes: ['expiresAt', 'absoluteExpiresAt', 'version', 'issuer'] })
    t.deepEqual(Table?.AttributeDefinitions?.map((attribute) => `${attribute.AttributeName}:${attribute.AttributeType}`).sort(), [
      'createdAt:N',
      'id:S',
      'principal:S',
    ])
    t.deepEqual((await rawItem(storage.table, ada))!['principal'], { S: 'ada' }, 'written with the data')
    t.false('principal' in (await rawItem(storage.table, nobody))!, 'no attribute for a session of no user')
    t.deepEqual(await indexed(storage.table, 'ada'), [ada])
    const [listed] = await storage.findByPrincipal('ada')
    t.like(listed, { id: ada, issuer: 'cookie:sid', version: 1 })
  })
})

test.serial('dynamodb: an update or remove that sets the principal to none removes the attribute, and so the index entry', async (t) => {
  await withStorage(async (storage) => {
    const [single, batched] = [generateId(), generateId()]
    const expiresAt = Date.now() + HOUR
    await storage.set(single, record('ada'))
    await storage.set(batched, record('ada'))
    t.deepEqual((await indexed(storage.table, 'ada')).sort(), [single, batched].sort())
    t.true(await storage.remove(single, 'userId', expiresAt, undefined, null))
    t.deepEqual(await storage.batch([{ type: 'update', id: batched, key: 'userId', value: null, expiresAt, ifVersion: 1, principal: null }]), [true])
    for (const id of [single, batched]) {
      const item = (await rawItem(storage.table, id))!
      t.false('principal' in item)
      t.is(item['version']!.N, '2', 'the same request wrote the data')
    }
    t.deepEqual(await indexed(storage.table, 'ada'), [])
    t.deepEqual(await storage.findByPrincipal('ada'), [])
    t.true(await storage.update(single, 'userId', 'bob', expiresAt, 2, 'bob'))
    t.deepEqual(await indexed(storage.table, 'bob'), [single])
  })
})

test.serial('dynamodb: findByPrincipal reads every page of the index, oldest first, and leaves out expired sessions', async (t) => {
  await withStorage(async (storage) => {
    const now = Date.now()
    const live = Array.from({ length: 7 }, () => generateId())
    const expired = Array.from({ length: 4 }, () => generateId())
    const ops = [
      ...live.map((id, i) => ({ type: 'set' as const, id, record: record('ada', { createdAt: now - 1000 * (20 - i) }) })),
      ...expired.map((id, i) => ({ type: 'set' as const, id, record: record('ada', { createdAt: now - 1000 * (10 - i), expiresAt: now - 1 }) })),
    ]
    t.true((await storage.batch(ops)).every((outcome) => outcome === true))
    const client = (await import('@aws-sdk/client-dynamodb')).DynamoDBClient
    const reader = new client(dynamo.clientConfig)
    try {
      // Pages of 2 items: 6 pages for 11 items, expired ones filtered out of theirs.
      const items = await queryPrincipal(reader, storage.table, 'ada', Date.now(), 2)
      t.deepEqual(
        items.map((item) => item['id']!.S),
        live,
      )
      t.deepEqual(await queryPrincipal(reader, storage.table, 'bob', Date.now(), 2), [])
    } finally {
      reader.destroy()
    }
    t.deepEqual(
      (await storage.findByPrincipal('ada')).map((session) => session.id),
      live,
    )
  })
})

test.serial(
  'dynamodb: createTable adds the index to a table made without it; findByPrincipal refuses while DynamoDB fills it, then lists every session',
  async (t) => {
    const table = uniqueTableName()
    await createSessionTable(dynamo.admin, table, { principalIndex: false })
    const warnings = warningsAbout(t, table)
    const before = generateId()
    const old = new DynamoDBStorage({ clientConfig: dynamo.clientConfig, table })
    await old.set(before, record('ada', { createdAt: Date.now() - 1000 }))
    await old.close()
    await withStorage(
      async (storage) => {
        const during = generateId()
        await storage.set(during, record('ada'))
        t.is(await indexStatus(table), 'CREATING', 'added by the first call')
        const refused = await t.throwsAsync(storage.findByPrincipal('ada'))
        t.true(isSessionError(refused, 'SESSION_INVALID_STATE'), 'refuses, never a partial list')
        t.regex(refused.message, /"principal-index" index of the table .* is CREATING/)
        while ((await indexStatus(table)) !== 'ACTIVE') await new Promise((resolve) => setTimeout(resolve, 50))
        t.deepEqual(
          (await storage.findByPrincipal('ada')).map((session) => session.id),
          [before, during],
          'the sessions written before the index are in it',
        )
        t.deepEqual(warnings, [], 'nothing to warn about')
      },
      { table },
    )
  },
)

test.serial(
  'dynamodb: with createTable false, a table without the index is used as it is: a warning, and findByPrincipal refuses with the command that adds it',
  async (t) => {
    const table = uniqueTableName()
    await createSessionTable(dynamo.admin, table, { principalIndex: false })
    const warnings = warningsAbout(t, table)
    await withStorage(
      async (storage) => {
        await storage.open()
        const id = generateId()
        await storage.set(id, record('ada'))
        t.deepEqual((await rawItem(table, id))!['principal'], { S: 'ada' }, 'the principal is kept for an index added later')
        t.is((await storage.get(id))!.principal, 'ada')
        for (let i = 0; i < 2; i++) {
          const refused = await t.throwsAsync(storage.findByPrincipal('ada'))
          t.true(isSessionError(refused, 'SESSION_INVALID_STATE'), 'refuses, never an empty list')
          t.regex(
            refused.message,
            /has no "principal-index" global secondary index\. Add it: aws dynamodb update-table --table-name \S+ --attribute-definitions/,
          )
        }
        t.is(await indexStatus(table), undefined, 'the table is not changed')
        await new Promise((resolve) => setImmediate(resolve))
        t.is(warnings.length, 1, 'one warning')
        t.regex(warnings[0]!, /createTable is false, so it is not added/)
        t.regex(warnings[0]!, /"Create":\{"IndexName":"principal-index"/)
      },
      { table, createTable: false },
    )
  },
)

test.serial(
  'dynamodb: an endpoint that will not add the index to a table: the storage works on, warns once with its refusal, and findByPrincipal refuses',
  async (t) => {
    const plain = await startDynalite({ addIndexes: false })
    const table = uniqueTableName()
    const warnings = warningsAbout(t, table)
    const storage = new DynamoDBStorage({ clientConfig: plain.clientConfig, table, createTable: true })
    try {
      await createSessionTable(plain.admin, table, { principalIndex: false })
      const id = generateId()
      await storage.set(id, record('ada'))
      t.is((await storage.get(id))!.principal, 'ada')
      const refused = await t.throwsAsync(storage.findByPrincipal('ada'))
      t.true(isSessionError(refused, 'SESSION_INVALID_STATE'))
      t.regex(refused.message, /has no "principal-index" global secondary index\. Add it: aws dynamodb update-table/)
      await new Promise((resolve) => setImmediate(resolve))
      t.is(warnings.length, 1)
      t.regex(warnings[0]!, /this endpoint would not add it, answering ".*provisionedThroughput.*"/)
    } finally {
      await storage.close()
      await plain.close()
    }
  },
)
