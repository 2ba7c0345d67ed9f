import { isWellFormed } from './limits.js'
import type { SessionData } from '../types.js'
import { isPlainObject } from '../values.js'
import {
  MAX_ISSUER_LENGTH,
  MAX_PRINCIPAL_LENGTH,
  type PrincipalSession,
  type SessionRecord,
  type SessionRecordInput,
  type StorageOperation,
} from './contract.js'
import { invalidOperation, invalidRecord } from './errors.js'
import { versionProblem } from './versions.js'

export { isPlainObject }

/**
 * A record's fields as a backend read them, before any check: numbers may arrive as numeric
 * strings (a BIGINT column, a DynamoDB number), "no absolute deadline" as `null`, `undefined`
 * or whatever the backend maps to one of those; "no issuer" likewise.
 */
export interface RawRecord {
  readonly data: unknown
  readonly createdAt: unknown
  readonly expiresAt: unknown
  readonly absoluteExpiresAt?: unknown
  readonly version: unknown
  readonly issuer?: unknown
  readonly principal?: unknown
}

/**
 * A {@link SessionRecord} from a backend's raw fields, or the problem that makes them unusable
 * (`"its data is not a JSON object"`). `absoluteExpiresAt` and `issuer` are left out when
 * there is none (`undefined` or `null`).
 *
 * @example
 * ```ts
 * const parsed = parseRecord({ data, createdAt: row.created_at, expiresAt: row.expires_at, absoluteExpiresAt: row.absolute_expires_at, version: row.version })
 * if (typeof parsed === 'string') continue // not ours to list
 * ```
 */
export function parseRecord(raw: RawRecord): SessionRecord | string {
  if (typeof raw !== 'object' || raw === null) return 'it is not an object'
  const createdAt = toNumber(raw.createdAt)
  const expiresAt = toNumber(raw.expiresAt)
  const absolute = raw.absoluteExpiresAt === undefined || raw.absoluteExpiresAt === null ? undefined : toNumber(raw.absoluteExpiresAt)
  const version = toNumber(raw.version)
  if (!isPlainObject(raw.data)) return 'its data is not a JSON object'
  if (!Number.isFinite(createdAt) || !Number.isFinite(expiresAt)) return 'its timestamps are missing'
  if (absolute !== undefined && !Number.isFinite(absolute)) return 'its absolute deadline is not a number'
  if (!Number.isSafeInteger(version) || version < 0) return 'its version is missing'
  const issuer = raw.issuer ?? undefined
  if (issuer !== undefined && !isIssuer(issuer)) return `its issuer is not a string of 1 to ${MAX_ISSUER_LENGTH} characters`
  const principal = raw.principal ?? undefined
  if (principal !== undefined && !isPrincipal(principal)) return `its principal is not well-formed text of 1 to ${MAX_PRINCIPAL_LENGTH} characters`
  const record: SessionRecord = { data: raw.data as SessionData, createdAt, expiresAt, version }
  if (absolute !== undefined) record.absoluteExpiresAt = absolute
  if (issuer !== undefined) record.issuer = issuer
  if (principal !== undefined) record.principal = principal
  return record
}

/**
 * Like {@link parseRecord}, but an unusable record throws `SESSION_INVALID_RECORD` naming the
 * storage (and the session, when `id` is given).
 *
 * @example
 * ```ts
 * return readRecord('mysql', { data: decodeData(row.data), createdAt: row.created_at, … }, id)
 * ```
 */
export function readRecord(storage: string, raw: RawRecord, id?: string): SessionRecord {
  const parsed = parseRecord(raw)
  if (typeof parsed === 'string') throw invalidRecord(storage, parsed, id)
  return parsed
}

/**
 * Why `op` cannot be applied, or `undefined` when it is a well-formed operation: an object of a
 * known type, a string id, a string key, finite deadlines, a record with a plain data object,
 * and an `ifVersion` that is absent or a non-negative integer.
 * What the backend itself cannot hold (an id too long for its key) is the backend's to check.
 *
 * @example
 * ```ts
 * const problem = checkOperation('memory', op)
 * if (problem !== undefined) throw problem
 * ```
 */
export function checkOperation(storage: string, op: StorageOperation): Error | undefined {
  if (typeof op !== 'object' || op === null) return invalidOperation(storage, 'an operation is not an object')
  if (typeof op.id !== 'string') return invalidOperation(storage, 'session ids are strings')
  if (op.type !== 'touch') {
    const problem = versionProblem(op.ifVersion)
    if (problem !== undefined) return invalidOperation(storage, problem)
  }
  switch (op.type) {
    case 'set':
      return checkRecordInput(storage, op.record)
    case 'update':
    case 'remove':
      if (typeof op.key !== 'string') return invalidOperation(storage, 'session keys are strings')
      if (op.principal !== undefined && op.principal !== null && !isPrincipal(op.principal)) {
        return invalidOperation(storage, `a principal is well-formed text of 1 to ${MAX_PRINCIPAL_LENGTH} characters, or null for none`)
      }
      return finiteDeadline(storage, op.expiresAt)
    case 'touch':
      return finiteDeadline(storage, op.expiresAt)
    case 'delete':
      return undefined
    default:
      return invalidOperation(storage, `unknown operation type ${JSON.stringify((op as { type: unknown }).type)}`)
  }
}

/**
 * Why `record` cannot be stored by `set`, or `undefined` when it can.
 *
 * @example
 * ```ts
 * checkRecordInput('memory', { data: [], createdAt: 0, expiresAt: 1 }) // SESSION_INVALID_OPERATION
 * ```
 */
export function checkRecordInput(storage: string, record: SessionRecordInput): Error | undefined {
  const candidate = record as Partial<SessionRecordInput> | null
  if (typeof candidate !== 'object' || candidate === null || !isPlainObject(candidate.data)) {
    return invalidOperation(storage, 'a session record needs a data object')
  }
  const absolute = candidate.absoluteExpiresAt as unknown
  if (
    !Number.isFinite(candidate.createdAt) ||
    !Number.isFinite(candidate.expiresAt) ||
    (absolute !== undefined && absolute !== null && !Number.isFinite(absolute))
  ) {
    return invalidOperation(storage, "a session record's createdAt, expiresAt and absoluteExpiresAt are finite numbers")
  }
  const issuer = candidate.issuer as unknown
  if (issuer !== undefined && issuer !== null && !isIssuer(issuer)) {
    return invalidOperation(storage, `a session record's issuer is a string of 1 to ${MAX_ISSUER_LENGTH} characters`)
  }
  const principal = candidate.principal as unknown
  if (principal !== undefined && principal !== null && !isPrincipal(principal)) {
    return invalidOperation(storage, `a session record's principal is well-formed text of 1 to ${MAX_PRINCIPAL_LENGTH} characters`)
  }
  return undefined
}

/**
 * Whether `value` can be a record's principal: well-formed text of 1 to
 * {@link MAX_PRINCIPAL_LENGTH} characters. A lone surrogate is refused: a UTF-8 column (MySQL)
 * would store U+FFFD for it, and two users' principals could then be the same.
 */
export function isPrincipal(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_PRINCIPAL_LENGTH && isWellFormed(value)
}

/** Whether `value` can be a record's issuer: an identity name of 1 to {@link MAX_ISSUER_LENGTH} characters. */
function isIssuer(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ISSUER_LENGTH
}

/**
 * `op` with the one convention for "no absolute deadline", "no issuer" and "no principal" (`undefined`): a `set`
 * whose record says `null` for either gets a copy without it. Other operations are returned as
 * they are.
 *
 * @example
 * ```ts
 * normalizeOperation({ type: 'set', id, record: { ...record, absoluteExpiresAt: null } }).record.absoluteExpiresAt // undefined
 * ```
 */
export function normalizeOperation(op: StorageOperation): StorageOperation {
  if (op.type !== 'set' || (op.record.absoluteExpiresAt !== null && op.record.issuer !== null && op.record.principal !== null)) return op
  const record = { ...op.record }
  if (record.absoluteExpiresAt === null) delete record.absoluteExpiresAt
  if (record.issuer === null) delete record.issuer
  if (record.principal === null) delete record.principal
  return { ...op, record }
}

function finiteDeadline(storage: string, expiresAt: unknown): Error | undefined {
  return Number.isFinite(expiresAt) ? undefined : invalidOperation(storage, 'expiresAt is a finite number of epoch milliseconds')
}

/** A number, or the number a numeric string spells (BIGINT columns, DynamoDB numbers); NaN otherwise. */
function toNumber(value: unknown): number {
  if (typeof value === 'number') return value
  if (typeof value === 'bigint') return Number(value)
  if (typeof value === 'string' && /^-?\d+(?:\.\d+)?$/.test(value)) return Number(value)
  return Number.NaN
}

/**
 * What a storage's `findByPrincipal` lists of the record of `id`: everything but its data and
 * principal.
 *
 * @example
 * ```ts
 * sessions.push(principalSession(id, readRecord('map', raw, id)))
 * ```
 */
export function principalSession(id: string, record: Omit<SessionRecord, 'data'>): PrincipalSession {
  const session: { -readonly [K in keyof PrincipalSession]: PrincipalSession[K] } = {
    id,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    version: record.version,
  }
  if (record.absoluteExpiresAt !== undefined) session.absoluteExpiresAt = record.absoluteExpiresAt
  if (record.issuer !== undefined) session.issuer = record.issuer
  return session
}
