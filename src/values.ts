import { SessionError } from './errors.js'
import { MAX_DEPTH, isWellFormed, type StorageLimits, type ValueLimits } from './kit/limits.js'
import type { JsonValue, SessionData } from './types.js'

export { MAX_DEPTH }

/** Longest key, in UTF-16 code units. */
export const MAX_KEY_LENGTH = 256

/** A value after normalization, with the bytes it takes in the session's JSON. */
export interface NormalizedValue {
  readonly value: JsonValue
  readonly bytes: number
}

class TooLarge extends Error {}

/**
 * Check that `key` can be a session key: a string of 1 to {@link MAX_KEY_LENGTH} characters,
 * well-formed Unicode when the storage needs it (`limits.wellFormedKeys`).
 * `__proto__` and friends are ordinary keys here; data objects never consult prototypes.
 */
export function assertKey(key: unknown, limits?: ValueLimits): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new SessionError('SESSION_INVALID_KEY', `session keys are strings of 1 to ${MAX_KEY_LENGTH} characters, got ${describe(key)}`)
  }
  if (limits?.wellFormedKeys === true && !isWellFormed(key)) {
    throw new SessionError('SESSION_INVALID_KEY', `session key ${JSON.stringify(key)} holds a lone surrogate, which the storage cannot keep`)
  }
}

/** Bytes an entry `"key":value,` adds to the session's JSON. */
export function entryBytes(key: string, valueBytes: number): number {
  return jsonStringBytes(key) + valueBytes + 2
}

/**
 * Bytes of `JSON.stringify(text)` in UTF-8. Printable ASCII without `"` or `\\` (most keys and
 * values) is counted without building the JSON text: this runs on every `set`.
 */
export function jsonStringBytes(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c > 0x7f || c === 0x22 || c === 0x5c) return Buffer.byteLength(JSON.stringify(text))
  }
  return text.length + 2
}

/** Bytes of `JSON.stringify(value)` in UTF-8, for a value already in a session. */
export function jsonBytes(value: JsonValue): number {
  switch (typeof value) {
    case 'string':
      return jsonStringBytes(value)
    case 'number':
      // JSON writes a finite number as String() does, and anything else as null.
      return Number.isFinite(value) ? String(value).length : 4
    case 'boolean':
      return value ? 4 : 5
    default:
      return Buffer.byteLength(JSON.stringify(value))
  }
}

/** Bytes of a whole data object serialized, as the storage will hold it. */
export function dataBytes(data: SessionData): number {
  return Buffer.byteLength(JSON.stringify(data))
}

/**
 * Turn `value` into exactly what a fresh process would load back from storage: a deep-frozen
 * JSON value. Rejects with `SESSION_INVALID_VALUE` what JSON cannot carry (functions, symbols,
 * BigInt, cycles, `undefined`) and what the storage cannot hold (nesting deeper than
 * `limits.maxDepth`, lone surrogates under `limits.wellFormedValues`), and with
 * `SESSION_TOO_LARGE` anything whose JSON is over `limits.maxBytes`, before serializing a huge result.
 */
export function normalizeValue(key: string, value: unknown, limits: ValueLimits): NormalizedValue {
  const maxBytes = limits.maxBytes
  switch (typeof value) {
    case 'string': {
      if (value.length > maxBytes) throw tooLarge(key, maxBytes)
      if (limits.wellFormedValues && !isWellFormed(value)) throw loneSurrogate(key)
      return { value, bytes: jsonStringBytes(value) }
    }
    case 'number':
      // JSON has no NaN or Infinity: storage would hand back null, so the cache holds null too;
      // and -0 comes back as 0.
      if (!Number.isFinite(value)) return { value: null, bytes: 4 }
      return { value: value === 0 ? 0 : value, bytes: String(value).length }
    case 'boolean':
      return { value, bytes: value ? 4 : 5 }
    case 'object':
      if (value === null) return { value: null, bytes: 4 }
      return normalizeObject(key, value, limits)
    default:
      throw new SessionError(
        'SESSION_INVALID_VALUE',
        `session value for "${key}" must be JSON; got ${describe(value)}${value === undefined ? ' (use remove() to delete a key)' : ''}`,
      )
  }
}

function normalizeObject(key: string, value: object, limits: ValueLimits): NormalizedValue {
  const { maxBytes, wellFormedValues } = limits
  let json: string | undefined
  try {
    json = JSON.stringify(value, function guard(this: unknown, k: string, v: unknown) {
      if (wellFormedValues && !isWellFormed(k)) throw loneSurrogate(key)
      switch (typeof v) {
        case 'function':
        case 'symbol':
        case 'bigint':
          throw new SessionError('SESSION_INVALID_VALUE', `session value for "${key}" contains a ${typeof v}, which JSON cannot hold`)
        case 'string':
          if (v.length > maxBytes) throw new TooLarge()
          if (wellFormedValues && !isWellFormed(v)) throw loneSurrogate(key)
          break
        case 'object':
          // A sparse array serializes one `null` per hole: refuse it before building the string.
          if (Array.isArray(v) && v.length > maxBytes / 2) throw new TooLarge()
          break
      }
      return v
    })
  } catch (err) {
    if (err instanceof SessionError) throw err
    if (err instanceof TooLarge) throw tooLarge(key, maxBytes)
    const reason = err instanceof RangeError ? 'is nested too deeply' : 'is not serializable (a cycle?)'
    throw new SessionError('SESSION_INVALID_VALUE', `session value for "${key}" ${reason}`, { cause: err })
  }
  if (json === undefined) {
    throw new SessionError('SESSION_INVALID_VALUE', `session value for "${key}" has no JSON form`)
  }
  const bytes = Buffer.byteLength(json)
  if (bytes > maxBytes) throw tooLarge(key, maxBytes)
  const parsed = JSON.parse(json) as JsonValue
  if (!freezeJson(parsed, 0, limits.maxDepth)) {
    const where = limits.maxDepth < MAX_DEPTH ? ', the most the storage holds' : ''
    throw new SessionError('SESSION_INVALID_VALUE', `session value for "${key}" is nested deeper than ${limits.maxDepth} levels${where}`)
  }
  return { value: parsed, bytes }
}

/**
 * Deep-freeze a parsed JSON value so no caller can change the cache behind the storage's back.
 * Returns false when the value is nested deeper than `maxDepth` (default {@link MAX_DEPTH};
 * a scalar is 0 deep, `{ a: 1 }` 1), counting from `depth`.
 */
export function freezeJson(value: unknown, depth: number, maxDepth = MAX_DEPTH): boolean {
  if (typeof value !== 'object' || value === null) return true
  if (depth >= maxDepth) return false
  if (Array.isArray(value)) {
    for (const item of value) if (!freezeJson(item, depth + 1, maxDepth)) return false
  } else {
    for (const k in value) if (!freezeJson((value as Record<string, unknown>)[k], depth + 1, maxDepth)) return false
  }
  Object.freeze(value)
  return true
}

/** Whether `value` is a plain JSON object (what a session's data must be). */
/** Whether two JSON values are the same value: objects compared key by key, in any order (a storage may reorder keys). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => sameJson(item, b[i]))
  if (Array.isArray(b)) return false
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  const other = b as Record<string, unknown>
  return keys.every((key) => Object.hasOwn(other, key) && sameJson((a as Record<string, unknown>)[key], other[key]))
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function loneSurrogate(key: string): SessionError {
  return new SessionError('SESSION_INVALID_VALUE', `session value for "${key}" holds a lone surrogate, which the storage cannot keep`)
}

function tooLarge(key: string, maxBytes: number): SessionError {
  return new SessionError('SESSION_TOO_LARGE', `session value for "${key}" would make the session larger than maxSessionBytes (${maxBytes})`)
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `a string of length ${value.length}`
  if (value === null) return 'null'
  return typeof value
}

/**
 * Check that a storage declaring `declared` can hold `data` as a record's data, with the checks
 * `set()` makes ({@link normalizeValue}: nesting, lone surrogates) and the storage's
 * `maxDataBytes` on the whole; for data that does not go through a session's `set()`, such as
 * what express-session hands its store. Throws `SESSION_INVALID_VALUE` saying what is wrong.
 *
 * @example
 * ```ts
 * checkData(sess, capabilitiesOf(storage).limits)
 * ```
 */
export function checkData(data: Readonly<Record<string, unknown>>, declared: StorageLimits | undefined): void {
  if (declared === undefined) return
  const limits: ValueLimits = {
    maxDepth: declared.maxDepth ?? MAX_DEPTH,
    maxBytes: Infinity, // the whole is measured below
    wellFormedKeys: declared.wellFormedKeys === true,
    wellFormedValues: declared.wellFormedValues === true,
  }
  for (const key of Object.keys(data)) {
    if (limits.wellFormedKeys && !isWellFormed(key)) {
      throw new SessionError('SESSION_INVALID_VALUE', `session key ${JSON.stringify(key)} holds a lone surrogate, which the storage cannot keep`)
    }
    normalizeValue(key, data[key], limits)
  }
  if (declared.maxDataBytes !== undefined) {
    const bytes = Buffer.byteLength(JSON.stringify(data))
    if (bytes > declared.maxDataBytes) {
      throw new SessionError(
        'SESSION_INVALID_VALUE',
        `the session is ${bytes} bytes of JSON, more than the storage holds in one record (${declared.maxDataBytes})`,
      )
    }
  }
}
