/**
 * Table creation for `DynamoDBStorage`'s `createTable` option: internal to
 * `caching-session-manager/storages/dynamodb`.
 *
 * @internal
 * @module
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  type AttributeDefinition,
  type DynamoDBClient,
  type GlobalSecondaryIndex,
  type TableDescription,
} from '@aws-sdk/client-dynamodb'
import { PRINCIPAL } from './items.js'

let warnedNoTtl = false

/** The global secondary index `findByPrincipal` queries: a principal's items, by `createdAt`. */
export const PRINCIPAL_INDEX = 'principal-index'
/** What the principal index holds besides its keys (`principal`, `createdAt`) and the table's (`id`): what a listed session shows. */
const PROJECTED = ['expiresAt', 'absoluteExpiresAt', 'version', 'issuer']
/** The attributes the principal index is keyed by, as a table declares them. */
const INDEX_ATTRIBUTES: AttributeDefinition[] = [
  { AttributeName: PRINCIPAL, AttributeType: 'S' },
  { AttributeName: 'createdAt', AttributeType: 'N' },
]
/** Errors of `UpdateTable` that say the endpoint will not add the index (not a failure to reach it): the table is then used without it. */
const REFUSALS = new Set(['ValidationException', 'UnknownOperationException', 'LimitExceededException'])

/**
 * The principal index, sparse: an item without a `principal` attribute (a session of no user) is
 * not in it. Projected `INCLUDE` so that a query answers `findByPrincipal` without reading the
 * table; on a provisioned table it gets the table's capacity.
 */
function principalIndex(throughput?: TableDescription['ProvisionedThroughput']): GlobalSecondaryIndex {
  const index: GlobalSecondaryIndex = {
    IndexName: PRINCIPAL_INDEX,
    KeySchema: [
      { AttributeName: PRINCIPAL, KeyType: 'HASH' },
      { AttributeName: 'createdAt', KeyType: 'RANGE' },
    ],
    Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: PROJECTED },
  }
  const read = throughput?.ReadCapacityUnits
  const write = throughput?.WriteCapacityUnits
  if (read !== undefined && read > 0 && write !== undefined && write > 0) index.ProvisionedThroughput = { ReadCapacityUnits: read, WriteCapacityUnits: write }
  return index
}

/** The status of the principal index in a table's description (`ACTIVE`, `CREATING`, …), `undefined` when the table has none. */
export function principalIndexStatus(table: TableDescription | undefined): string | undefined {
  const index = table?.GlobalSecondaryIndexes?.find((candidate) => candidate.IndexName === PRINCIPAL_INDEX)
  return index === undefined ? undefined : (index.IndexStatus ?? 'ACTIVE')
}

/** The AWS CLI command that adds the principal index to `table` (an on-demand one; a provisioned one also needs `ProvisionedThroughput`). */
export function addIndexCommand(table: string): string {
  const definitions = INDEX_ATTRIBUTES.map((attribute) => `AttributeName=${attribute.AttributeName},AttributeType=${attribute.AttributeType}`).join(' ')
  return `aws dynamodb update-table --table-name ${table} --attribute-definitions ${definitions} --global-secondary-index-updates '${JSON.stringify([{ Create: principalIndex() }])}'`
}

/**
 * Create `table` (on-demand, keyed by `id`, TTL on `ttl`, with the principal index) unless it
 * exists, and wait until it is active. A table another process is creating at the same time is
 * waited for like our own. A table that exists without the principal index gets it
 * ({@link addPrincipalIndex}). Resolves to `undefined`, or to why the index could not be added.
 */
export async function createTableIfMissing(client: DynamoDBClient, table: string): Promise<Error | undefined> {
  try {
    const described = await client.send(new DescribeTableCommand({ TableName: table }))
    const active = described.Table?.TableStatus === 'ACTIVE' ? described.Table : await waitUntilActive(client, table)
    return principalIndexStatus(active) === undefined ? await addPrincipalIndex(client, table, active) : undefined
  } catch (err) {
    if (errorName(err) !== 'ResourceNotFoundException') throw err
  }
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }, ...INDEX_ATTRIBUTES],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
        GlobalSecondaryIndexes: [principalIndex()],
      }),
    )
  } catch (err) {
    if (errorName(err) !== 'ResourceInUseException') throw err
  }
  const active = await waitUntilActive(client, table)
  await enableTtl(client, table)
  // A table another process created at the same time, without the index (an older version).
  return principalIndexStatus(active) === undefined ? addPrincipalIndex(client, table, active) : undefined
}

/**
 * Add the principal index to an active `table` that lacks it (`UpdateTable`). DynamoDB then fills
 * it from the table's items (the index is `CREATING` meanwhile, and `findByPrincipal` refuses
 * until it is `ACTIVE`); the table takes reads and writes all along, so this does not wait for
 * it. An index another process adds at the same time counts as added. Resolves to `undefined`,
 * or to the endpoint's refusal (an emulator such as dynalite does not add indexes to a table);
 * any other failure rejects.
 */
async function addPrincipalIndex(client: DynamoDBClient, table: string, described: TableDescription | undefined): Promise<Error | undefined> {
  try {
    const updated = await client.send(
      new UpdateTableCommand({
        TableName: table,
        AttributeDefinitions: INDEX_ATTRIBUTES,
        GlobalSecondaryIndexUpdates: [{ Create: principalIndex(described?.ProvisionedThroughput) }],
      }),
    )
    if (principalIndexStatus(updated.TableDescription) !== undefined) return undefined
    const again = await client.send(new DescribeTableCommand({ TableName: table }))
    if (principalIndexStatus(again.Table) !== undefined) return undefined
    return new Error('the endpoint accepted UpdateTable but the table has no such index')
  } catch (err) {
    const name = errorName(err)
    if (name === undefined || !REFUSALS.has(name)) throw err
    const again = await client.send(new DescribeTableCommand({ TableName: table }))
    if (principalIndexStatus(again.Table) !== undefined) return undefined
    return err instanceof Error ? err : new Error(String(err))
  }
}

/** Describe `table`: rejects when the client cannot reach DynamoDB, and says so when the table does not exist. */
export async function describeTable(client: DynamoDBClient, table: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: table }))).Table
  } catch (err) {
    if (errorName(err) !== 'ResourceNotFoundException') throw err
    throw new Error(`table ${table} does not exist (create it, or give the storage createTable: true)`, { cause: err })
  }
}

/** Poll until the table is ACTIVE, for at most about 5 minutes of waiting; resolves to its description then. */
async function waitUntilActive(client: DynamoDBClient, table: string): Promise<TableDescription> {
  for (let delay = 50, waited = 0; ; waited += delay, delay = Math.min(delay * 2, 2000)) {
    const described = await client.send(new DescribeTableCommand({ TableName: table }))
    if (described.Table?.TableStatus === 'ACTIVE') return described.Table
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
