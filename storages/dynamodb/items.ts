/**
 * How `DynamoDBStorage` lays a session out in an item, and the expressions it sends:
 * internal to `caching-session-manager/storages/dynamodb`.
 *
 * @internal
 * @module
 */
import { UpdateItemCommand, type AttributeValue, type ScanCommandInput, type WriteRequest } from '@aws-sdk/client-dynamodb'
import {
  dataFromEntries,
  deadlineOf,
  encodeValue,
  isLive,
  parseRecord,
  type SessionRecord,
  type SessionRecordInput,
  type StorageOperation,
} from '../../src/kit/index.js'

/** An item as the SDK reads and writes it. */
export type Item = Record<string, AttributeValue>
/** The operations that are one `UpdateItem` each. */
export type Change = Exclude<StorageOperation, { type: 'delete' }>

const ONE: AttributeValue = { N: '1' }
const NULL_TYPE: AttributeValue = { S: 'NULL' }
const NAMES = { '#e': 'expiresAt', '#a': 'absoluteExpiresAt' } as const
/** The kit's `isLive` as an expression: live while now < expiresAt and now < absoluteExpiresAt, if any (a NULL one is none). */
const LIVE = '#e > :now AND (attribute_not_exists(#a) OR attribute_type(#a, :null) OR #a > :now)'
/** What cleanup deletes: the items dead by that rule (an item without a numeric `expiresAt` is not a session to judge). */
const DEAD = '#e <= :now OR #a <= :now'

/** The primary key of session `id`. */
export function key(id: string): Item {
  return { id: { S: id } }
}

/** A `BatchWriteItem` delete of session `id`. */
export function deleteRequest(id: string): WriteRequest {
  return { DeleteRequest: { Key: key(id) } }
}

/** A Scan filter for the items live (or, with `dead`, not live) at `now`. */
export function liveFilter(now: number, dead = false): Partial<ScanCommandInput> {
  const values: Item = { ':now': number(now) }
  if (!dead) values[':null'] = NULL_TYPE
  return { FilterExpression: dead ? DEAD : LIVE, ExpressionAttributeNames: { ...NAMES }, ExpressionAttributeValues: values }
}

/** Replace every attribute of session `id` and add one to its version. */
export function setCommand(table: string, id: string, record: SessionRecordInput): UpdateItemCommand {
  const data: Item = {}
  for (const name of Object.keys(record.data)) data[encodeKey(name)] = { S: encodeValue(record.data[name], name) }
  const absolute = record.absoluteExpiresAt
  const values: Item = { ':d': { M: data }, ':c': number(record.createdAt), ':e': number(record.expiresAt), ':ttl': ttl(deadlineOf(record)), ':one': ONE }
  if (absolute !== undefined) values[':a'] = number(absolute)
  return new UpdateItemCommand({
    TableName: table,
    Key: key(id),
    UpdateExpression: `SET #d = :d, #c = :c, #e = :e, #ttl = :ttl${absolute === undefined ? ' REMOVE #a' : ', #a = :a'} ADD #v :one`,
    ExpressionAttributeNames: { ...NAMES, '#d': 'data', '#c': 'createdAt', '#ttl': 'ttl', '#v': 'version' },
    ExpressionAttributeValues: values,
  })
}

/**
 * An update, remove or touch, on condition that the item is live at `now` (and, to change a
 * key, that its data is a map). The TTL follows the idle deadline, which the manager never sets
 * past the absolute one.
 */
export function updateCommand(table: string, op: Exclude<Change, { type: 'set' }>, now: number): UpdateItemCommand {
  const names: Record<string, string> = { ...NAMES, '#id': 'id', '#ttl': 'ttl', '#v': 'version' }
  const values: Item = { ':e': number(op.expiresAt), ':ttl': ttl(op.expiresAt), ':one': ONE, ':now': number(now), ':null': NULL_TYPE }
  let update = 'SET #e = :e, #ttl = :ttl ADD #v :one'
  let condition = `attribute_exists(#id) AND ${LIVE}`
  if (op.type !== 'touch') {
    names['#d'] = 'data'
    names['#k'] = encodeKey(op.key)
    values[':map'] = { S: 'M' }
    condition += ' AND attribute_type(#d, :map)'
    if (op.type === 'update') {
      values[':v'] = { S: encodeValue(op.value, op.key) }
      update = 'SET #d.#k = :v, #e = :e, #ttl = :ttl ADD #v :one'
    } else {
      update = 'REMOVE #d.#k SET #e = :e, #ttl = :ttl ADD #v :one'
    }
  }
  return new UpdateItemCommand({
    TableName: table,
    Key: key(op.id),
    UpdateExpression: update,
    ConditionExpression: condition,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  })
}

/**
 * The record of an item, `undefined` when it is past its deadline at `now`, or why it is not a
 * record. Each value of the data map is JSON text, so every JSON value round-trips exactly (a
 * DynamoDB number holds only 38 digits up to 1e126, and nests only 32 levels).
 */
export function toRecord(item: Item, now: number): SessionRecord | undefined | string {
  const absolute = item['absoluteExpiresAt']
  const record = parseRecord({
    data: {},
    createdAt: item['createdAt']?.N,
    expiresAt: item['expiresAt']?.N,
    // Not a number is a problem (a condition finds such an item dead); a NULL is no deadline.
    absoluteExpiresAt: absolute === undefined || absolute.NULL === true ? undefined : (absolute.N ?? absolute),
    version: item['version']?.N,
  })
  if (typeof record === 'string') return record
  if (!isLive(record, now)) return undefined
  const map = item['data']?.M
  const data = map === undefined ? undefined : dataFromEntries(Object.entries(map).map(([stored, value]) => [decodeKey(stored), value.S] as [string, string]))
  if (data === undefined) return 'its data is not a map of JSON texts'
  record.data = data
  return record
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

function number(value: number): AttributeValue {
  return { N: String(value) }
}

/** DynamoDB's TTL reads epoch seconds. */
function ttl(deadlineMs: number): AttributeValue {
  return { N: String(Math.ceil(deadlineMs / 1000)) }
}
