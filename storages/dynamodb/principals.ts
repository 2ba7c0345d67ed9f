/**
 * How `DynamoDBStorage` reads the sessions of one principal from its principal index: internal
 * to `caching-session-manager/storages/dynamodb`.
 *
 * @internal
 * @module
 */
import { QueryCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { liveFilter, PRINCIPAL, type Item } from './items.js'
import { PRINCIPAL_INDEX } from './table.js'

/**
 * The items of `principal` in the principal index of `table` that are live at `now`, oldest
 * first: a `Query` on the index, page after page (`LastEvaluatedKey`) until the last. The index
 * is a global one, so the query is eventually consistent (DynamoDB offers no consistent read on
 * it): a session written a moment ago may be missing, or one deleted a moment ago still listed.
 *
 * @internal Exported for its tests (`pageLimit`: items read per page, DynamoDB's 1 MB when absent); not part of the storage's API.
 * @example
 * ```ts
 * const items = await queryPrincipal(client, 'sessions', '42', Date.now())
 * ```
 */
export async function queryPrincipal(client: DynamoDBClient, table: string, principal: string, now: number, pageLimit?: number): Promise<Item[]> {
  const live = liveFilter(now)
  const items: Item[] = []
  let start: Item | undefined
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: table,
        IndexName: PRINCIPAL_INDEX,
        KeyConditionExpression: '#p = :p',
        FilterExpression: live.FilterExpression,
        ExpressionAttributeNames: { ...live.ExpressionAttributeNames, '#p': PRINCIPAL },
        ExpressionAttributeValues: { ...live.ExpressionAttributeValues, ':p': { S: principal } },
        ExclusiveStartKey: start,
        Limit: pageLimit,
      }),
    )
    items.push(...(page.Items ?? []))
    start = page.LastEvaluatedKey
  } while (start !== undefined)
  return items
}
