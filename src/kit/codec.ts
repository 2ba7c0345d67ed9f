import { SessionError } from '../errors.js'
import type { JsonValue, SessionData } from '../types.js'
import { isPlainObject } from '../values.js'

/**
 * The value codec every storage uses: session values travel as JSON text, so what a backend
 * hands back is exactly what a fresh process would read. `__proto__` is an ordinary own key
 * both ways, `-0` reads back as `0` (as the manager caches it), and values JSON cannot hold are
 * refused with `SESSION_INVALID_VALUE` (`SESSION_TOO_LARGE` past a size limit).
 */

/**
 * The JSON text of one session value. Rejects what JSON cannot hold (a BigInt, a function,
 * `undefined`, a cycle) with `SESSION_INVALID_VALUE`, and text over `maxBytes` (UTF-8) with
 * `SESSION_TOO_LARGE`.
 *
 * @example
 * ```ts
 * encodeValue({ items: 3 }, 'cart') // '{"items":3}'
 * ```
 */
export function encodeValue(value: unknown, key: string, maxBytes = Infinity): string {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (err) {
    throw new SessionError('SESSION_INVALID_VALUE', `the value of "${key}" cannot be stored: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    })
  }
  if (text === undefined) throw new SessionError('SESSION_INVALID_VALUE', `the value of "${key}" cannot be stored: it has no JSON form`)
  if (maxBytes !== Infinity && Buffer.byteLength(text) > maxBytes) {
    throw new SessionError('SESSION_TOO_LARGE', `the value of "${key}" is larger than ${maxBytes} bytes`)
  }
  return text
}

/**
 * The JSON text of a whole data object (see {@link encodeValue}).
 *
 * @example
 * ```ts
 * encodeData({ user: 'ada' }) // '{"user":"ada"}'
 * ```
 */
export function encodeData(data: SessionData, maxBytes = Infinity): string {
  return encodeValue(data, 'data', maxBytes)
}

/**
 * The value of a JSON text, or `undefined` when `text` is not JSON text. `-0` becomes `0`.
 *
 * @example
 * ```ts
 * decodeValue('[1,2]') // [1, 2]
 * ```
 */
export function decodeValue(text: unknown): JsonValue | undefined {
  if (typeof text !== 'string') return undefined
  try {
    // A reviver only where a -0 may be: JSON.parse gives -0 for "-0", the manager caches 0.
    return (text.includes('-0') ? JSON.parse(text, positiveZero) : JSON.parse(text)) as JsonValue
  } catch {
    return undefined
  }
}

/**
 * The data object of a JSON text, or `undefined` when it is not the text of a JSON object.
 * Keys such as `__proto__` are own properties.
 *
 * @example
 * ```ts
 * decodeData('{"__proto__":1}') // { ['__proto__']: 1 }, an own key
 * ```
 */
export function decodeData(text: unknown): SessionData | undefined {
  const data = decodeValue(text)
  return isPlainObject(data) ? data : undefined
}

/**
 * A data object from its keys and each value's JSON text, for backends that store keys apart
 * (one entry, column or map member per key). Parsed as one JSON text, so `__proto__` is an own
 * key; `undefined` when a value is not JSON text.
 *
 * @example
 * ```ts
 * dataFromEntries([['a', '1'], ['b', '"x"']]) // { a: 1, b: 'x' }
 * ```
 */
export function dataFromEntries(entries: Iterable<readonly [key: string, valueText: string]>): SessionData | undefined {
  let json = '{'
  for (const [key, text] of entries) {
    if (typeof key !== 'string' || typeof text !== 'string') return undefined
    json += (json.length > 1 ? ',' : '') + JSON.stringify(key) + ':' + text
  }
  return decodeData(json + '}')
}

/**
 * Set `key` of `data` as an own property, even for `__proto__` (an assignment would set the
 * prototype instead).
 *
 * @example
 * ```ts
 * setOwn(data, '__proto__', { admin: true })
 * ```
 */
export function setOwn(data: SessionData, key: string, value: JsonValue): void {
  Object.defineProperty(data, key, { value, enumerable: true, writable: true, configurable: true })
}

function positiveZero(_key: string, value: unknown): unknown {
  return value === 0 ? 0 : value
}
