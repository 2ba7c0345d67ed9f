/**
 * What a storage can hold, declared in its capabilities so the manager refuses a value beyond
 * it in `set()` (`SESSION_INVALID_VALUE`, before anything changes) rather than the storage
 * failing the write after the cache took it.
 */

import { knownOptionsCheck, optionNames } from './options.js'

/** Deepest nesting of a session value when the storage declares no limit. */
export const MAX_DEPTH = 100

/**
 * The limits a storage declares in {@link StorageCapabilities.limits}. Each is optional: what a
 * storage leaves out, it holds without limit beyond the manager's own (nesting
 * {@link MAX_DEPTH}, `maxSessionBytes`).
 *
 * @example
 * ```ts
 * // MariaDB refuses JSON nested deeper than 32 (the data object takes one level) and cannot
 * // hold a lone surrogate, in a key or a value.
 * readonly capabilities = { batch: true, admin: true, shared: true, limits: { maxDepth: 30, wellFormedKeys: true, wellFormedValues: true } }
 * ```
 */
export interface StorageLimits {
  /**
   * Deepest nesting of one session value (arrays and objects; a scalar is 0, `{ a: 1 }` is 1,
   * `{ a: [1] }` is 2) that every write of the storage round-trips. At most {@link MAX_DEPTH}.
   */
  readonly maxDepth?: number
  /**
   * Most bytes of a session's data (its JSON text in UTF-8) one record can hold, the storage's
   * own fields aside. The manager refuses a `maxSessionBytes` above it at construction.
   */
  readonly maxDataBytes?: number
  /** Keys must be well-formed Unicode: a key with a lone surrogate would be refused or changed by the storage. */
  readonly wellFormedKeys?: boolean
  /** Strings inside values (and the keys of objects inside values) must be well-formed Unicode too. */
  readonly wellFormedValues?: boolean
}

const LIMIT_NAMES = optionNames<StorageLimits>({ maxDepth: true, maxDataBytes: true, wellFormedKeys: true, wellFormedValues: true })

/**
 * A storage's `limits` option, for a storage whose backend the user knows better than the storage
 * does (an express-session store): checked, or `undefined` when not given.
 *
 * @throws TypeError naming `owner` and what is wrong.
 * @example
 * ```ts
 * const limits = limitsOption(options.limits, 'ExpressStoreStorage') // { maxDataBytes: 16_000_000 } for connect-mongo
 * ```
 */
export function limitsOption(value: unknown, owner: string): StorageLimits | undefined {
  if (value === undefined) return undefined
  const option = `${owner} option "limits"`
  if (typeof value !== 'object' || value === null) throw new TypeError(`${option} must be an object`)
  knownOptionsCheck(value, `${owner} limits`, LIMIT_NAMES)
  const { maxDepth, maxDataBytes, wellFormedKeys, wellFormedValues } = value as Record<string, unknown>
  if (maxDepth !== undefined && (typeof maxDepth !== 'number' || !Number.isSafeInteger(maxDepth) || maxDepth < 1 || maxDepth > MAX_DEPTH))
    throw new TypeError(`${option}: maxDepth must be an integer of 1 to ${MAX_DEPTH}`)
  if (maxDataBytes !== undefined && (typeof maxDataBytes !== 'number' || !Number.isSafeInteger(maxDataBytes) || maxDataBytes < 1))
    throw new TypeError(`${option}: maxDataBytes must be a positive integer`)
  for (const [name, flag] of [
    ['wellFormedKeys', wellFormedKeys],
    ['wellFormedValues', wellFormedValues],
  ] as const) {
    if (flag !== undefined && typeof flag !== 'boolean') throw new TypeError(`${option}: ${name} must be a boolean`)
  }
  return Object.freeze({ ...(value as StorageLimits) })
}

/** The limits a manager applies to every value it takes, the storage's and its own together. */
export interface ValueLimits {
  /** Deepest nesting of a value. */
  readonly maxDepth: number
  /** Most bytes of a session's data: `maxSessionBytes`. */
  readonly maxBytes: number
  /** Keys must be well-formed Unicode. */
  readonly wellFormedKeys: boolean
  /** Strings in values must be well-formed Unicode. */
  readonly wellFormedValues: boolean
}

/**
 * The limits a manager with `maxSessionBytes` applies over a storage that declares `declared`.
 *
 * @throws TypeError when `declared` is not a valid declaration, or when `maxSessionBytes` is more
 * than the storage holds (`owner` names the storage in the message).
 * @example
 * ```ts
 * const limits = valueLimits(65_536, capabilitiesOf(storage).limits, storage.name)
 * ```
 */
export function valueLimits(maxSessionBytes: number, declared: StorageLimits | undefined, owner: string): ValueLimits {
  const { maxDepth = MAX_DEPTH, maxDataBytes = Infinity, wellFormedKeys = false, wellFormedValues = false } = declared ?? {}
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 1 || maxDepth > MAX_DEPTH)
    throw new TypeError(`storage "${owner}" declares limits.maxDepth ${String(maxDepth)}: it must be an integer of 1 to ${MAX_DEPTH}`)
  if (typeof maxDataBytes !== 'number' || !(maxDataBytes > 0))
    throw new TypeError(`storage "${owner}" declares limits.maxDataBytes ${String(maxDataBytes)}: it must be a positive number`)
  if (maxSessionBytes > maxDataBytes)
    throw new TypeError(
      `SessionManager option "maxSessionBytes" (${maxSessionBytes}) is more than the "${owner}" storage holds in one record (${maxDataBytes} bytes of data): lower it to at most ${maxDataBytes}`,
    )
  return { maxDepth, maxBytes: maxSessionBytes, wellFormedKeys: wellFormedKeys === true, wellFormedValues: wellFormedValues === true }
}

/** Whether `text` is well-formed Unicode: no lone surrogate (`String.prototype.isWellFormed`, typed here since the project's lib is ES2023). */
export function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed()
}
