import test from 'ava'
import { createServer, type Server } from 'node:http'
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'
import { isSessionError } from '../../src/errors.js'
import { generateId } from '../../src/ids.js'
import { WriteQueue } from '../../src/write-queue.js'
import { DynamoDBStorage } from '../../storages/dynamodb.js'

// Who retries what, seen from the wire: an endpoint that speaks DynamoDB's JSON protocol to the
// real AWS SDK and answers as a throttled table does. The storage sends each request once; only
// BatchWriteItem's UnprocessedItems are sent again, within the same call, 3 sends in all.

const HOUR = 3_600_000
const THROTTLED = {
  __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
  message: 'The level of configured provisioned throughput for the table was exceeded',
}

interface Sent {
  readonly operation: string
  readonly body: { RequestItems?: Record<string, Array<{ DeleteRequest: { Key: { id: { S: string } } } }>>; Key?: { id: { S: string } } }
}

const CONDITION_FAILED = {
  __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',
  message: 'The conditional request failed',
}

/** Answer for one request: a body sent with 200, `'throttle'`, or `'condition failed'`. */
type Answer = (sent: Sent, count: number) => object | 'throttle' | 'condition failed'

interface FakeEndpoint {
  readonly config: DynamoDBClientConfig
  readonly sent: Sent[]
  count(operation: string): number
  close(): Promise<void>
}

async function fakeEndpoint(answer: Answer): Promise<FakeEndpoint> {
  const sent: Sent[] = []
  const server: Server = createServer((req, res) => {
    let text = ''
    req.on('data', (chunk: Buffer) => (text += chunk.toString()))
    req.on('end', () => {
      const request: Sent = { operation: String(req.headers['x-amz-target']).split('.')[1] ?? '', body: JSON.parse(text) as Sent['body'] }
      sent.push(request)
      const reply = answer(request, sent.filter((other) => other.operation === request.operation).length)
      res.writeHead(typeof reply === 'string' ? 400 : 200, { 'content-type': 'application/x-amz-json-1.0' })
      res.end(JSON.stringify(reply === 'throttle' ? THROTTLED : reply === 'condition failed' ? CONDITION_FAILED : reply))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    config: { endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } },
    sent,
    count: (operation) => sent.filter((request) => request.operation === operation).length,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** BatchWriteItem's answer that leaves every request unprocessed. */
function nothingProcessed(sent: Sent): object {
  return { UnprocessedItems: sent.body.RequestItems }
}

test('dynamodb: a client the storage makes sends each request once; a throttled read or write rejects with the SDK error as cause', async (t) => {
  const endpoint = await fakeEndpoint(() => 'throttle')
  const storage = new DynamoDBStorage({ clientConfig: endpoint.config })
  try {
    const error = await t.throwsAsync(storage.get(generateId()))
    t.true(isSessionError(error, 'SESSION_STORAGE_ERROR'))
    t.is((error.cause as Error).name, 'ProvisionedThroughputExceededException')
    for (const write of [storage.update(generateId(), 'a', 1, Date.now() + HOUR), storage.set(generateId(), record()), storage.delete(generateId())]) {
      t.true(isSessionError(await t.throwsAsync(write), 'SESSION_STORAGE_ERROR'))
    }
    t.deepEqual(
      endpoint.sent.map((request) => request.operation),
      ['GetItem', 'UpdateItem', 'UpdateItem', 'DeleteItem'],
      'one send per call: no SDK retry',
    )
    // A BatchWriteItem the table refuses as a whole is not sent again either: its deletes fail as outcomes.
    const outcomes = await storage.batch([
      { type: 'touch', id: generateId(), expiresAt: Date.now() + HOUR },
      { type: 'delete', id: generateId() },
    ])
    t.true(outcomes.every((outcome) => isSessionError(outcome, 'SESSION_STORAGE_ERROR')))
    t.is(endpoint.count('UpdateItem'), 3)
    t.is(endpoint.count('BatchWriteItem'), 1)
  } finally {
    await storage.close()
    await endpoint.close()
  }
})

test('dynamodb: a client passed in is used as configured, its SDK retries included', async (t) => {
  const endpoint = await fakeEndpoint(() => 'throttle')
  const client = new DynamoDBClient({ ...endpoint.config, maxAttempts: 2 })
  const storage = new DynamoDBStorage({ client })
  try {
    await t.throwsAsync(storage.get(generateId()))
    t.is(endpoint.count('GetItem'), 2, 'the client retried once, as configured')
  } finally {
    await storage.close()
    client.destroy()
    await endpoint.close()
  }
})

test('dynamodb: unprocessed deletes are sent again within the call, 3 sends in all; what is left fails as its own outcomes', async (t) => {
  const endpoint = await fakeEndpoint((sent) => (sent.operation === 'BatchWriteItem' ? nothingProcessed(sent) : {}))
  const storage = new DynamoDBStorage({ clientConfig: endpoint.config })
  try {
    const deleted = Array.from({ length: 30 }, () => generateId())
    const other = generateId()
    const outcomes = await storage.batch([
      ...deleted.map((id) => ({ type: 'delete' as const, id })),
      { type: 'touch', id: other, expiresAt: Date.now() + HOUR },
      { type: 'set', id: deleted[0]!, record: record() },
    ])
    t.is(endpoint.count('BatchWriteItem'), 6, 'two requests (25 + 5 deletes), each sent 3 times')
    const batches = endpoint.sent.filter((request) => request.operation === 'BatchWriteItem').map((request) => request.body.RequestItems!['sessions']!.length)
    t.deepEqual(
      batches.sort((a, b) => a - b),
      [5, 5, 5, 25, 25, 25],
    )
    for (const outcome of outcomes.slice(0, 30)) {
      t.true(isSessionError(outcome, 'SESSION_STORAGE_ERROR'))
      t.regex(((outcome as Error).cause as Error).message, /unprocessed/)
    }
    t.is(outcomes[30], true, 'another session is not affected')
    t.is(outcomes[31], outcomes[0], 'the later write of a session whose delete failed is not sent')
    t.is(endpoint.count('UpdateItem'), 1)
  } finally {
    await storage.close()
    await endpoint.close()
  }
})

test('dynamodb: a delete left unprocessed once lands on the next send', async (t) => {
  const endpoint = await fakeEndpoint((sent, count) => {
    if (sent.operation !== 'BatchWriteItem') return {}
    const requests = sent.body.RequestItems!['sessions']!
    return { UnprocessedItems: count === 1 ? { sessions: requests.slice(1) } : {} }
  })
  const storage = new DynamoDBStorage({ clientConfig: endpoint.config })
  try {
    const ids = [generateId(), generateId(), generateId()]
    t.deepEqual(await storage.batch(ids.map((id) => ({ type: 'delete' as const, id }))), [true, true, true])
    const resent = endpoint.sent.map((request) => request.body.RequestItems!['sessions']!.map((entry) => entry.DeleteRequest.Key.id.S))
    t.deepEqual(resent, [ids, ids.slice(1)])
  } finally {
    await storage.close()
    await endpoint.close()
  }
})

test('dynamodb: under the write queue, a delete is sent at most 3 times per queue attempt (12 in all with 3 retries), not 32', async (t) => {
  const endpoint = await fakeEndpoint((sent) => (sent.operation === 'BatchWriteItem' ? nothingProcessed(sent) : 'throttle'))
  const storage = new DynamoDBStorage({ clientConfig: endpoint.config })
  const queue = new WriteQueue(storage, { retries: 3, retryDelay: 1 })
  try {
    // Two sessions at once go through batch() (BatchWriteItem, 3 sends per call); a retry of one
    // session alone takes the single path (DeleteItem, 1 send). Either way: 4 queue attempts.
    const ids = [generateId(), generateId()]
    for (const error of await Promise.all(ids.map((id) => t.throwsAsync(queue.enqueue({ type: 'delete', id }))))) {
      t.true(isSessionError(error, 'SESSION_STORAGE_FAILED'))
    }
    for (const id of ids) {
      const batched = endpoint.sent.filter((request) => request.body.RequestItems?.['sessions']?.some((entry) => entry.DeleteRequest.Key.id.S === id)).length
      const single = endpoint.sent.filter((request) => request.operation === 'DeleteItem' && request.body.Key?.id.S === id).length
      t.true(batched >= 3 && batched % 3 === 0, `${batched} BatchWriteItem sends: whole calls of 3`)
      t.is(batched / 3 + single, 4, 'one storage call per queue attempt')
      t.true(batched + single <= 12)
    }
    // One session alone takes the single path: DeleteItem, once per queue attempt.
    const before = endpoint.sent.length
    await t.throwsAsync(queue.enqueue({ type: 'delete', id: generateId() }))
    t.deepEqual(
      endpoint.sent.slice(before).map((request) => request.operation),
      ['DeleteItem', 'DeleteItem', 'DeleteItem', 'DeleteItem'],
    )
  } finally {
    await storage.close()
    await endpoint.close()
  }
})

test('dynamodb: a refused conditional write costs one GetItem only when it is an update or remove; a set or delete is a conflict at once', async (t) => {
  let item: object | undefined = { id: { S: 'x' }, data: { M: {} }, createdAt: { N: '0' }, expiresAt: { N: String(Date.now() + HOUR) }, version: { N: '4' } }
  const endpoint = await fakeEndpoint((sent) => {
    if (sent.operation === 'GetItem') return item === undefined ? {} : { Item: item }
    return 'condition failed'
  })
  const storage = new DynamoDBStorage({ clientConfig: endpoint.config })
  try {
    const id = generateId()
    t.is(await storage.update(id, 'a', 1, Date.now() + HOUR, 3), 'conflict', 'the item is at version 4')
    t.is(await storage.set(id, record(), 3), 'conflict')
    t.is(await storage.set(id, record(), 0), 'conflict')
    t.is(await storage.delete(id, 3), 'conflict')
    t.false(await storage.update(id, 'a', 1, Date.now() + HOUR), 'unconditional: the condition is liveness alone')
    item = undefined
    t.false(await storage.remove(id, 'a', Date.now() + HOUR, 3), 'no item: false, not a conflict')
    t.deepEqual(
      endpoint.sent.map((request) => request.operation),
      ['UpdateItem', 'GetItem', 'UpdateItem', 'UpdateItem', 'DeleteItem', 'UpdateItem', 'UpdateItem', 'GetItem'],
    )
  } finally {
    await storage.close()
    await endpoint.close()
  }
})

/** The keys and attributes of a BatchGetItem request, as sent. */
interface GetRequest {
  Keys: Array<{ id: { S: string } }>
  ProjectionExpression?: string
  ConsistentRead?: boolean
}

function requestedKeys(sent: Sent): GetRequest {
  return (sent.body as unknown as { RequestItems: Record<string, GetRequest> }).RequestItems['sessions']!
}

/** A live item as BatchGetItem returns it through the projection. */
function liveItem(key: { id: { S: string } }): object {
  return { ...key, version: { N: '2' }, expiresAt: { N: String(Date.now() + HOUR) } }
}

test('dynamodb: versions() reads 100 keys per BatchGetItem with a projection; unprocessed keys are sent again within the call', async (t) => {
  // Like dynalite, the endpoint returns the unprocessed keys without the projection: the storage sends its own again.
  const endpoint = await fakeEndpoint((sent, count) => {
    if (sent.operation !== 'BatchGetItem') return {}
    const { Keys: keys } = requestedKeys(sent)
    const [first, ...rest] = keys
    if (count % 2 === 1 && rest.length > 0) return { Responses: { sessions: [liveItem(first!)] }, UnprocessedKeys: { sessions: { Keys: rest } } }
    return { Responses: { sessions: keys.map(liveItem) } }
  })
  const storage = new DynamoDBStorage({ clientConfig: endpoint.config, concurrency: 1 })
  try {
    const ids = Array.from({ length: 250 }, () => generateId())
    const versions = await storage.versions(ids)
    t.is(versions.size, 250)
    t.true([...versions.values()].every((version) => version === 2))
    const requests = endpoint.sent.map(requestedKeys)
    t.deepEqual(
      requests.map((request) => request.Keys.length),
      [100, 99, 100, 99, 50, 49],
      'each chunk of at most 100 keys, and its unprocessed keys once more',
    )
    t.true(requests.every((request) => request.ProjectionExpression !== undefined && request.ConsistentRead === true))
  } finally {
    await storage.close()
    await endpoint.close()
  }
})

test('dynamodb: versions() rejects when keys are still unprocessed after 3 sends, and sends nothing more', async (t) => {
  const endpoint = await fakeEndpoint((sent) =>
    sent.operation === 'BatchGetItem' ? { Responses: { sessions: [] }, UnprocessedKeys: { sessions: requestedKeys(sent) } } : {},
  )
  const storage = new DynamoDBStorage({ clientConfig: endpoint.config })
  try {
    const error = await t.throwsAsync(storage.versions([generateId(), generateId()]))
    t.true(isSessionError(error, 'SESSION_STORAGE_ERROR'))
    t.regex(error.message, /could not read session versions$/)
    t.regex((error.cause as Error).message, /^BatchGetItem left 2 of 2 keys unprocessed after 3 sends/)
    t.is(endpoint.count('BatchGetItem'), 3)
  } finally {
    await storage.close()
    await endpoint.close()
  }
})

function record(): { data: Record<string, never>; createdAt: number; expiresAt: number } {
  return { data: {}, createdAt: Date.now(), expiresAt: Date.now() + HOUR }
}
