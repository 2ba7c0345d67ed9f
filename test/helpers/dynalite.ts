import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import { CreateTableCommand, DeleteTableCommand, DescribeTableCommand, DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'

/**
 * What dynalite 4 lacks, added before it loads: `UpdateTable` with a global secondary index
 * `Create` (it validates one, then ignores it). As DynamoDB does, the index is listed `CREATING`
 * at once (items written meanwhile are indexed as they are written), then, after
 * `indexBackfillMs`, filled from the table's items and made `ACTIVE`. As on DynamoDB, an
 * on-demand table's new index takes no `ProvisionedThroughput`.
 */
const ADD_INDEX_SOURCE = `
const root = path.dirname(workerData.dynalitePath)
const db = require(path.join(root, 'db'))
const updateTypes = require(path.join(root, 'validations', 'updateTable')).types
delete updateTypes.GlobalSecondaryIndexUpdates.children.children.Create.children.ProvisionedThroughput.notNull
// A new index's key attributes come in AttributeDefinitions, which dynalite's UpdateTable does not read.
updateTypes.AttributeDefinitions = Object.assign({}, require(path.join(root, 'validations', 'createTable')).types.AttributeDefinitions, { required: false })
const actionPath = require.resolve(path.join(root, 'actions', 'updateTable'))
const updateTable = require(actionPath)
require.cache[actionPath].exports = function (store, data, cb) {
  const creates = (data.GlobalSecondaryIndexUpdates || []).filter((update) => update.Create).map((update) => update.Create)
  if (creates.length === 0) return updateTable(store, data, cb)
  const name = data.TableName
  store.tableDb.lock(name, (release) => {
    cb = release(cb)
    store.getTable(name, false, (err, table) => {
      if (err) return cb(err)
      const existing = table.GlobalSecondaryIndexes || []
      const taken = creates.find((create) => existing.some((index) => index.IndexName === create.IndexName))
      if (taken) return cb(db.validationError('One or more parameter values were invalid: Attempting to create an index which already exists: ' + taken.IndexName))
      for (const attribute of data.AttributeDefinitions || [])
        if (!table.AttributeDefinitions.some((defined) => defined.AttributeName === attribute.AttributeName)) table.AttributeDefinitions.push(attribute)
      const added = creates.map((create) => ({
        IndexName: create.IndexName,
        KeySchema: create.KeySchema,
        Projection: create.Projection,
        IndexStatus: 'CREATING',
        ProvisionedThroughput: { NumberOfDecreasesToday: 0, ReadCapacityUnits: 0, WriteCapacityUnits: 0 },
        IndexSizeBytes: 0,
        ItemCount: 0,
        IndexArn: table.TableArn + '/index/' + create.IndexName,
      }))
      table.GlobalSecondaryIndexes = existing.concat(added)
      store.tableDb.put(name, table, (err) => {
        if (err) return cb(err)
        cb(null, { TableDescription: table })
        setTimeout(() => backfill(store, name, added.map((index) => index.IndexName)), workerData.indexBackfillMs)
      })
    })
  })
}
function backfill(store, name, indexNames) {
  store.getTable(name, false, (err, table) => {
    if (err) return
    const indexes = table.GlobalSecondaryIndexes.filter((index) => indexNames.includes(index.IndexName))
    const only = Object.assign({}, table, { LocalSecondaryIndexes: [], GlobalSecondaryIndexes: indexes })
    db.lazy(store.getItemDb(name).createValueStream(), () => undefined).join((items) => {
      let left = items.length + 1
      const done = () => {
        if (--left > 0) return
        store.getTable(name, false, (err, fresh) => {
          if (err) return
          for (const index of fresh.GlobalSecondaryIndexes || []) if (indexNames.includes(index.IndexName)) index.IndexStatus = 'ACTIVE'
          store.tableDb.put(name, fresh, () => undefined)
        })
      }
      for (const item of items) db.updateIndexes(store, only, null, item, done)
      done()
    })
  })
}
`

/**
 * The server side, run in a worker thread of this process: dynalite is CPU-bound JavaScript, and
 * on its own thread it neither slows the tests' event loop nor is slowed by it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const path = require('node:path')
if (workerData.addIndexes) {
${ADD_INDEX_SOURCE}
}
const dynalite = require(workerData.dynalitePath)
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port))
parentPort.on('message', () => { server.closeAllConnections(); server.close(() => process.exit(0)) })
`

/** A dynalite server running in this process, in memory, on a random loopback port. */
export interface RunningDynalite {
  /** Configuration for SDK clients that talk to it over HTTP. */
  readonly clientConfig: DynamoDBClientConfig
  /** A client for setting up and inspecting tables. */
  readonly admin: DynamoDBClient
  /** Stop the server and the admin client. */
  close(): Promise<void>
}

/**
 * Start dynalite (in a worker thread) on 127.0.0.1 with a random port; tables are created and
 * deleted at once, and an index added to a table is filled `indexBackfillMs` later (`addIndexes`
 * false: dynalite as it is, which refuses to add one to an on-demand table).
 */
export async function startDynalite({
  indexBackfillMs = 500,
  addIndexes = true,
}: { indexBackfillMs?: number; addIndexes?: boolean } = {}): Promise<RunningDynalite> {
  const dynalitePath = createRequire(import.meta.url).resolve('dynalite')
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { dynalitePath, indexBackfillMs, addIndexes } })
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (message: unknown) => resolve(Number(message)))
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new Error(`dynalite exited with code ${code} before listening`)))
  })
  const clientConfig: DynamoDBClientConfig = {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  }
  const admin = new DynamoDBClient(clientConfig)
  return {
    clientConfig,
    admin,
    close: async () => {
      admin.destroy()
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
      worker.postMessage('close')
      await exited
    },
  }
}

/** A table name no other test uses. */
export function uniqueTableName(prefix = 'sessions-test'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`
}

/**
 * Create a table keyed like the storage's own (`id`, a string) and wait until it is ACTIVE (as
 * DynamoDB, dynalite refuses items before). It has the storage's principal index unless
 * `principalIndex` is false (a table made before the storage indexed principals).
 */
export async function createSessionTable(admin: DynamoDBClient, table: string, { principalIndex = true } = {}): Promise<void> {
  const index = {
    IndexName: 'principal-index',
    KeySchema: [
      { AttributeName: 'principal', KeyType: 'HASH' as const },
      { AttributeName: 'createdAt', KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: 'INCLUDE' as const, NonKeyAttributes: ['expiresAt', 'absoluteExpiresAt', 'version', 'issuer'] },
  }
  await admin.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [
        { AttributeName: 'id', AttributeType: 'S' },
        ...(principalIndex
          ? [
              { AttributeName: 'principal', AttributeType: 'S' as const },
              { AttributeName: 'createdAt', AttributeType: 'N' as const },
            ]
          : []),
      ],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      ...(principalIndex ? { GlobalSecondaryIndexes: [index] } : {}),
    }),
  )
  while ((await admin.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus !== 'ACTIVE') {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Delete a test table; a missing one is fine. */
export async function deleteTable(admin: DynamoDBClient, table: string): Promise<void> {
  try {
    await admin.send(new DeleteTableCommand({ TableName: table }))
  } catch (err) {
    if (!(err instanceof Error && err.name === 'ResourceNotFoundException')) throw err
  }
}
