/**
 * How `DynamoDBStorage` lays a session out in an item, and the expressions it sends:
 * internal to `caching-session-manager/storages/dynamodb`.
 *
 * @internal
 * @module
 */
import {
  DeleteItemCommand,
  UpdateItemCommand,
  type AttributeValue,
  type KeysAndAttributes,
  type ScanCommandInput,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb'
import {
  dataFromEntries,
  deadlineOf,
  encodeValue,
  isLive,
  parseRecord,
  principalSession,
  type PrincipalSession,
  type RawRecord,
  type SessionRecord,
  type SessionRecordInput,
  type StorageOperation,
} from '../../src/kit/index.js'

/** An item as the SDK reads and writes it. */
export type Item = Record<string, AttributeValue>
/** The operations that are one `UpdateItem` each. */
export type Change = Exclude<StorageOperation, { type: 'delete' }>
/** Key changes and touches: an `UpdateItem` on condition that the item is live. */
export type KeyChange = Exclude<Change, { type: 'set' }>

/**
 * What record a set may replace, and what version it then writes:
 * - `'live or none'`: a live item (its version plus one) or none (1): the first try of an
 *   unconditional set, which a dead item fails;
 * - `'none live'`: no item, or a dead one (1): `ifVersion` 0, and the second try of an
 *   unconditional set;
 * - a number v: a live item at version v (v + 1).
 */
export type SetCondition = 'live or none' | 'none live' | number

const ONE: AttributeValue = { N: '1' }
const NULL_TYPE: AttributeValue = { S: 'NULL' }
const NAMES = { '#e': 'expiresAt', '#a': 'absoluteExpiresAt' } as const
/** The attribute that holds a session's principal, when it has one: the partition key of the principal index (absent: not indexed). */
export const PRINCIPAL = 'principal'
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

/** Replace every attribute of session `id` on `condition` at `now` (see {@link SetCondition}), and set its version. */
export function setCommand(table: string, id: string, record: SessionRecordInput, condition: SetCondition, now: number): UpdateItemCommand {
  const data: Item = {}
  for (const name of Object.keys(record.data)) data[encodeKey(name)] = { S: encodeValue(record.data[name], name) }
  const absolute = record.absoluteExpiresAt
  const values: Item = {
    ':d': { M: data },
    ':c': number(record.createdAt),
    ':e': number(record.expiresAt),
    ':ttl': ttl(deadlineOf(record)),
    ':one': ONE,
    ':now': number(now),
    ':null': NULL_TYPE,
  }
  if (absolute !== undefined) values[':a'] = number(absolute)
  const issuer = record.issuer
  if (issuer !== undefined) values[':i'] = { S: issuer }
  const principal = record.principal
  if (principal !== undefined) values[':p'] = { S: principal }
  let expression = `attribute_not_exists(#id) OR (${LIVE})`
  if (condition === 'none live') expression = `attribute_not_exists(#id) OR NOT (${LIVE})`
  else if (typeof condition === 'number') {
    expression = `attribute_exists(#id) AND ${LIVE} AND #v = :if`
    values[':if'] = number(condition)
  }
  // ADD starts from 0 on an item without a version: a new item gets 1.
  const restart = condition === 'none live'
  const removed = [absolute === undefined ? '#a' : '', issuer === undefined ? '#i' : '', principal === undefined ? '#p' : ''].filter(Boolean)
  const update = [
    `SET #d = :d, #c = :c, #e = :e, #ttl = :ttl${absolute === undefined ? '' : ', #a = :a'}${issuer === undefined ? '' : ', #i = :i'}${principal === undefined ? '' : ', #p = :p'}${restart ? ', #v = :one' : ''}`,
    removed.length === 0 ? '' : `REMOVE ${removed.join(', ')}`,
    restart ? '' : 'ADD #v :one',
  ]
  return new UpdateItemCommand({
    TableName: table,
    Key: key(id),
    UpdateExpression: update.filter(Boolean).join(' '),
    ConditionExpression: expression,
    ExpressionAttributeNames: { ...NAMES, '#id': 'id', '#d': 'data', '#c': 'createdAt', '#ttl': 'ttl', '#v': 'version', '#i': 'issuer', '#p': PRINCIPAL },
    ExpressionAttributeValues: values,
  })
}

/** Delete session `id` unless a live item is at another version than `ifVersion`. */
export function deleteCommand(table: string, id: string, ifVersion: number, now: number): DeleteItemCommand {
  return new DeleteItemCommand({
    TableName: table,
    Key: key(id),
    ConditionExpression: `attribute_not_exists(#id) OR NOT (${LIVE}) OR #v = :if`,
    ExpressionAttributeNames: { ...NAMES, '#id': 'id', '#v': 'version' },
    ExpressionAttributeValues: { ':now': number(now), ':null': NULL_TYPE, ':if': number(ifVersion) },
  })
}

/** What `versions` reads of the items of `keys` (one table's part of a `BatchGetItem`): the id, the version and the deadlines. */
export function versionsRequest(keys: Item[]): KeysAndAttributes {
  return { Keys: keys, ProjectionExpression: '#id, #v, #e, #a', ExpressionAttributeNames: { ...NAMES, '#id': 'id', '#v': 'version' }, ConsistentRead: true }
}

/** The id and version of an item read by a {@link versionsRequest}, when it is live at `now`. */
export function liveVersion(item: Item, now: number): [string, number] | undefined {
  const id = item['id']?.S
  const record = parseRecord({ data: {}, createdAt: 0, expiresAt: item['expiresAt']?.N, absoluteExpiresAt: absoluteOf(item), version: item['version']?.N })
  return id === undefined || typeof record === 'string' || !isLive(record, now) ? undefined : [id, record.version]
}

/**
 * An update, remove or touch, on condition that the item is live at `now` (and, to change a
 * key, that its data is a map, and that its version is `ifVersion` when given). A key change
 * adds one to the version; a touch keeps it. The TTL follows the idle deadline, which the
 * manager never sets past the absolute one.
 */
export function updateCommand(table: string, op: KeyChange, now: number): UpdateItemCommand {
  const names: Record<string, string> = { ...NAMES, '#id': 'id', '#ttl': 'ttl' }
  const values: Item = { ':e': number(op.expiresAt), ':ttl': ttl(op.expiresAt), ':now': number(now), ':null': NULL_TYPE }
  let update = 'SET #e = :e, #ttl = :ttl'
  let condition = `attribute_exists(#id) AND ${LIVE}`
  if (op.type !== 'touch') {
    names['#d'] = 'data'
    names['#k'] = encodeKey(op.key)
    names['#v'] = 'version'
    values[':map'] = { S: 'M' }
    values[':one'] = ONE
    condition += ' AND attribute_type(#d, :map)'
    if (op.ifVersion !== undefined) {
      condition += ' AND #v = :if'
      values[':if'] = number(op.ifVersion)
    }
    // A principal change is in the same expression: a string SETs the attribute (and so the index entry), null REMOVEs it.
    const principal = op.principal
    if (principal !== undefined) names['#p'] = PRINCIPAL
    if (typeof principal === 'string') values[':p'] = { S: principal }
    const setPrincipal = typeof principal === 'string' ? ', #p = :p' : ''
    const removePrincipal = principal === null ? ', #p' : ''
    if (op.type === 'update') {
      values[':v'] = { S: encodeValue(op.value, op.key) }
      update = `SET #d.#k = :v, #e = :e, #ttl = :ttl${setPrincipal}${principal === null ? ' REMOVE #p' : ''} ADD #v :one`
    } else {
      update = `REMOVE #d.#k${removePrincipal} SET #e = :e, #ttl = :ttl${setPrincipal} ADD #v :one`
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
  const record = parseRecord({ ...metadataOf(item), principal: principalOf(item) })
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

/** An item's absolute deadline for `parseRecord`: not a number is a problem (a condition finds such an item dead); a NULL is none. */
function absoluteOf(item: Item): unknown {
  const absolute = item['absoluteExpiresAt']
  return absolute === undefined || absolute.NULL === true ? undefined : (absolute.N ?? absolute)
}

/** An item's issuer for `parseRecord`: its string, none when absent or NULL, anything else as found (a problem). */
function issuerOf(item: Item): unknown {
  const issuer = item['issuer']
  return issuer === undefined || issuer.NULL === true ? undefined : (issuer.S ?? issuer)
}

/** An item's principal for `parseRecord`, as {@link issuerOf} reads the issuer. */
function principalOf(item: Item): unknown {
  const principal = item[PRINCIPAL]
  return principal === undefined || principal.NULL === true ? undefined : (principal.S ?? principal)
}

/**
 * The session that an item read from the principal index stands for (its projection: the id,
 * the principal, `createdAt`, the deadlines, the version and the issuer), `undefined` when it is
 * past its deadline at `now`, or why it is not a record.
 */
export function toPrincipalSession(item: Item, now: number): PrincipalSession | undefined | string {
  const id = item['id']?.S
  if (id === undefined) return 'it has no string id'
  const record = parseRecord(metadataOf(item))
  if (typeof record === 'string') return record
  return isLive(record, now) ? principalSession(id, record) : undefined
}

/** The fields of an item's record other than its data and principal, raw, for `parseRecord`. */
function metadataOf(item: Item): RawRecord {
  return {
    data: {},
    createdAt: item['createdAt']?.N,
    expiresAt: item['expiresAt']?.N,
    absoluteExpiresAt: absoluteOf(item),
    version: item['version']?.N,
    issuer: issuerOf(item),
  }
}

function number(value: number): AttributeValue {
  return { N: String(value) }
}

/** DynamoDB's TTL reads epoch seconds. */
function ttl(deadlineMs: number): AttributeValue {
  return { N: String(Math.ceil(deadlineMs / 1000)) }
}
