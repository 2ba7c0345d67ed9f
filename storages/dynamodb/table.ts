/**
 * Table creation for `DynamoDBStorage`'s `createTable` option: internal to
 * `caching-session-manager/storages/dynamodb`.
 *
 * @internal
 * @module
 */
import { CreateTableCommand, DescribeTableCommand, UpdateTimeToLiveCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb'

let warnedNoTtl = false

/**
 * Create `table` (on-demand, keyed by `id`, TTL on `ttl`) unless it exists, and wait until it is
 * active. A table another process is creating at the same time is waited for like our own.
 */
export async function createTableIfMissing(client: DynamoDBClient, table: string): Promise<void> {
  try {
    const described = await client.send(new DescribeTableCommand({ TableName: table }))
    if (described.Table?.TableStatus !== 'ACTIVE') await waitUntilActive(client, table)
    return
  } catch (err) {
    if (errorName(err) !== 'ResourceNotFoundException') throw err
  }
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    )
  } catch (err) {
    if (errorName(err) !== 'ResourceInUseException') throw err
  }
  await waitUntilActive(client, table)
  await enableTtl(client, table)
}

/** Describe `table`: rejects when the client cannot reach DynamoDB, and says so when the table does not exist. */
export async function describeTable(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: table }))
  } catch (err) {
    if (errorName(err) !== 'ResourceNotFoundException') throw err
    throw new Error(`table ${table} does not exist (create it, or give the storage createTable: true)`, { cause: err })
  }
}

/** Poll until the table is ACTIVE, for at most about 5 minutes of waiting. */
async function waitUntilActive(client: DynamoDBClient, table: string): Promise<void> {
  for (let delay = 50, waited = 0; ; waited += delay, delay = Math.min(delay * 2, 2000)) {
    const described = await client.send(new DescribeTableCommand({ TableName: table }))
    if (described.Table?.TableStatus === 'ACTIVE') return
    if (waited + delay > 300_000) throw new Error(`table ${table} is still ${described.Table?.TableStatus ?? 'missing'} after 5 minutes`)
    await new Promise((resolve) => setTimeout(resolve, delay))
  }
}

async function enableTtl(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(new UpdateTimeToLiveCommand({ TableName: table, TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true } }))
  } catch (err) {
    // Emulators such as dynalite lack UpdateTimeToLive; sessions still expire on read and through cleanup().
    if (errorName(err) !== 'UnknownOperationException') throw err
    if (!warnedNoTtl) {
      warnedNoTtl = true
      process.emitWarning(
        `this DynamoDB endpoint does not support UpdateTimeToLive, so table ${table} has no TTL; expired sessions stay until cleanup() deletes them`,
        { code: 'DYNAMODB_STORAGE_NO_TTL' },
      )
    }
  }
}

/** The SDK's name of a service error (`ResourceNotFoundException`): how DynamoDB errors are told apart. */
export function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined
}
