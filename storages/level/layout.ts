/**
 * How `LevelStorage` lays sessions out in its two sublevels: internal to
 * `caching-session-manager/storages/level`.
 *
 * @internal
 * @module
 */
import { dataFromEntries, deadlineOf, decodeValue, invalidRecord, isLive, isPlainObject, parseRecord, readRecord } from '../../src/kit/index.js'
import type { RawRecord, SessionRecord } from '../../src/kit/index.js'

/** Session metadata, one entry per session; the data keys are entries of their own. */
export interface Meta {
  createdAt: number
  expiresAt: number
  absoluteExpiresAt?: number
  version: number
  /** The identity that issued the session, when recorded. */
  issuer?: string
  /** The principal the session belongs to, when it has one (indexed in the `principals` sublevel). */
  principal?: string
}

/** What one id looks like while a batch is applied to it. */
export interface Working {
  meta: Meta | undefined
  /** Keys of the data entries in the database (full entry keys); known only for ids a set or delete replaces. */
  dataKeys: Set<string> | undefined
}

/**
 * Layout, inside three sublevels of the database:
 * - `sessions`: `<id>\x00` → metadata JSON, `<id>\x01<key as JSON>` → the value as JSON;
 * - `expiry`: `<deadline, 16 digits><id>` → '' — the expiry index `cleanup()` walks;
 * - `principals`: `<principal as JSON>\x00<id>` → '' — the principal index `findByPrincipal` reads
 *   (JSON escapes control characters, so `\x00` ends the principal).
 * Ids are printable ASCII, so `\x00` and `\x01` cannot occur in them and one key range
 * holds exactly one session.
 */
export const META = '\x00'
export const DATA = '\x01'
export const END = '\x02'
export const VALID_ID = /^[\x21-\x7e]{1,255}$/
export const DEADLINE_DIGITS = 16
const MAX_DEADLINE = 10 ** DEADLINE_DIGITS - 1

/** The session's live record from its entries (metadata first, then data); throws `SESSION_INVALID_RECORD` when it cannot be used. */
export function toRecord(id: string, entries: Array<[string, string]>, now: number): SessionRecord | undefined {
  const [first, ...rest] = entries
  if (first === undefined) return undefined
  if (first[0] !== id + META) throw invalidRecord('level', 'it has data but no metadata', id)
  const meta = parseMeta(first[1])
  if (meta === undefined) throw invalidRecord('level', 'its metadata is not valid JSON with createdAt, expiresAt and version', id)
  if (!isLive(meta, now)) return undefined
  const values: Array<[string, string]> = []
  for (const [key, text] of rest) {
    const name = decodeValue(key.slice(id.length + 1))
    if (typeof name !== 'string') throw invalidRecord('level', 'one of its keys is not a string', id)
    values.push([name, text])
  }
  return readRecord('level', { ...meta, data: dataFromEntries(values) }, id)
}

/** Parsed metadata, or `undefined` when it is not metadata at all. */
export function parseMeta(text: string): Meta | undefined {
  const fields = decodeValue(text)
  const parsed = isPlainObject(fields) ? parseRecord({ ...fields, data: {} } as RawRecord) : 'not an object'
  if (typeof parsed === 'string') return undefined
  const { data: _data, ...meta } = parsed
  return meta
}

export function dataKey(id: string, key: string): string {
  // As JSON, any key (even one with lone surrogates) survives the UTF-8 round trip exactly.
  return id + DATA + JSON.stringify(key)
}

/** Fixed-width milliseconds, so the index sorts by deadline. Fractions round up: live while `now` is below. */
export function deadlineKey(deadline: number): string {
  return String(Math.min(MAX_DEADLINE, Math.max(0, Math.ceil(deadline)))).padStart(DEADLINE_DIGITS, '0')
}

export function indexKey(id: string, meta: Meta): string {
  return deadlineKey(deadlineOf(meta)) + id
}

/** The principal index entry of session `id`. */
export function principalKey(principal: string, id: string): string {
  return JSON.stringify(principal) + META + id
}

/** The key range of the principal index entries of `principal`. */
export function principalRange(principal: string): { gte: string; lt: string } {
  const prefix = JSON.stringify(principal)
  return { gte: prefix + META, lt: prefix + DATA }
}
