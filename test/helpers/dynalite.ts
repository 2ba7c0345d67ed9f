import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import { CreateTableCommand, DeleteTableCommand, DescribeTableCommand, DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'

/**
 * The server side, run in a worker thread of this process: dynalite is CPU-bound JavaScript, and
 * on its own thread it neither slows the tests' event loop nor is slowed by it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
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

/** Start dynalite (in a worker thread) on 127.0.0.1 with a random port; tables are created and deleted at once. */
export async function startDynalite(): Promise<RunningDynalite> {
  const dynalitePath = createRequire(import.meta.url).resolve('dynalite')
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { dynalitePath } })
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

/** Create a table keyed like the storage's own (`id`, a string) and wait until it is ACTIVE (as DynamoDB, dynalite refuses items before). */
export async function createSessionTable(admin: DynamoDBClient, table: string): Promise<void> {
  await admin.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
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
