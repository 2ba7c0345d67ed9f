/**
 * Option checks shared by every storage. A bad option throws a `TypeError` that names the
 * storage and the option, at construction, as lru-cache does.
 */

import { nearestName } from './nearest.js'

/**
 * Every option name of `T`, each a key set to `true`: an object literal of this type that
 * leaves a name out, or has a name `T` does not, does not compile. So a list made with
 * {@link optionNames} follows the options interface it is made from.
 */
export type OptionNameSet<T> = { readonly [K in keyof T & string]-?: true }

/**
 * The option names of `T`, for {@link knownOptionsCheck}; the compiler checks that `names`
 * holds every option of `T` and nothing else.
 *
 * @example
 * ```ts
 * const KNOWN = optionNames<MemoryStorageOptions>({ max: true, now: true })
 * ```
 */
export function optionNames<T extends object>(names: OptionNameSet<T>): readonly (keyof T & string)[] {
  return Object.freeze(Object.keys(names) as (keyof T & string)[])
}

/** Longest option name quoted in a message; longer ones are cut. */
const QUOTED_NAME_LENGTH = 64

/**
 * Throws a `TypeError` naming `owner` and the first own enumerable string key of `options` that
 * is not one of `known` (a key set to `undefined` included: a misspelt option is refused
 * whatever its value). When a known name is near (see {@link nearestName}), the message asks
 * `did you mean "…"?`; otherwise it lists the known names.
 *
 * @example
 * ```ts
 * knownOptionsCheck({ cacheLimt: 10 }, 'SessionManager', ['cacheLimit', 'maxAge'])
 * // TypeError: SessionManager option "cacheLimt" is not known: did you mean "cacheLimit"?
 * ```
 */
export function knownOptionsCheck(options: object, owner: string, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue
    const quoted = JSON.stringify(key.length > QUOTED_NAME_LENGTH ? `${key.slice(0, QUOTED_NAME_LENGTH)}…` : key)
    const nearest = nearestName(key, known)
    throw new TypeError(
      nearest === undefined
        ? `${owner} option ${quoted} is not known; the known options are ${known.map((name) => `"${name}"`).join(', ')}`
        : `${owner} option ${quoted} is not known: did you mean "${nearest}"?`,
    )
  }
}

/**
 * `options` when it is an object (or `{}` when it is undefined).
 *
 * @example
 * ```ts
 * const checked = optionsObject(options, 'MemoryStorage')
 * ```
 */
export function optionsObject<T extends object>(options: T | undefined, owner: string): T | Record<string, never> {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null) throw new TypeError(`${owner} options must be an object`)
  return options
}

/**
 * The `now` option every storage accepts: a clock in epoch ms (default `Date.now`), so a test
 * or the manager can move time for the storage too.
 *
 * @example
 * ```ts
 * this.#now = clockOption(options.now, 'LevelStorage')
 * ```
 */
export function clockOption(now: unknown, owner: string): () => number {
  if (now === undefined) return Date.now
  if (typeof now !== 'function') throw new TypeError(`${owner} option "now" must be a function returning epoch milliseconds`)
  return now as () => number
}

/**
 * A positive safe integer option, or `fallback` when it is undefined.
 *
 * @example
 * ```ts
 * const max = positiveIntegerOption(options.max, 'MemoryStorage', 'max', 100_000)
 * ```
 */
export function positiveIntegerOption(value: unknown, owner: string, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new TypeError(`${owner} option "${name}" must be a positive integer`)
  return value
}

/**
 * A finite, non-negative number option (a duration), or `fallback` when it is undefined.
 *
 * @example
 * ```ts
 * const seconds = nonNegativeNumberOption(options.cleanupInterval, 'LevelStorage', 'cleanupInterval', 3600, 'number of seconds')
 * ```
 */
export function nonNegativeNumberOption(value: unknown, owner: string, name: string, fallback: number, what = 'number'): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`${owner} option "${name}" must be a non-negative ${what}`)
  return value
}

/**
 * A boolean option, or `fallback` when it is undefined.
 *
 * @example
 * ```ts
 * const createTable = booleanOption(options.createTable, 'MySQLStorage', 'createTable', true)
 * ```
 */
export function booleanOption(value: unknown, owner: string, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new TypeError(`${owner} option "${name}" must be a boolean`)
  return value
}

/**
 * A function option, or `fallback` when it is undefined.
 *
 * @example
 * ```ts
 * const onError = functionOption(options.onCleanupError, 'LevelStorage', 'onCleanupError', (error: Error) => process.emitWarning(error))
 * ```
 */
export function functionOption<F extends (...args: never[]) => unknown>(value: unknown, owner: string, name: string, fallback: F): F {
  if (value === undefined) return fallback
  if (typeof value !== 'function') throw new TypeError(`${owner} option "${name}" must be a function`)
  return value as F
}

/**
 * A non-empty string option, or `fallback` when it is undefined.
 *
 * @example
 * ```ts
 * const name = stringOption(options.name, 'ExpressStoreStorage', 'name', 'express-store')
 * ```
 */
export function stringOption(value: unknown, owner: string, name: string, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${owner} option "${name}" must be a non-empty string`)
  return value
}

/**
 * Throws a `TypeError` when `key`, the secret at `index` of option `option`, is missing
 * (`undefined` or `''`), as it is when the environment variable meant to hold it is unset: the
 * message says so, rather than calling the key too short.
 *
 * @example
 * ```ts
 * for (const [index, key] of keys.entries()) missingKeyCheck(key, index, 'CookieIdentity option "keys"')
 * ```
 */
export function missingKeyCheck(key: unknown, index: number, option: string): void {
  if (key === undefined || key === null || key === '')
    throw new TypeError(
      `${option} holds no key at index ${index} (it is ${key === '' ? 'an empty string' : String(key)}): no key given (is the environment variable meant to hold it, such as SESSION_KEY, set?)`,
    )
}
