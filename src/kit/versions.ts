import type { StorageOperation, WriteConflict } from './contract.js'

/** What a write needs to know of the record it is about to change: the version of the live one, if there is one. */
export interface LiveVersion {
  readonly version: number
}

/**
 * What a write does, decided from the live record: `'apply'` it, or answer without writing
 * anything: `false` (it needs a live record and there is none) or `'conflict'` (its `ifVersion`
 * does not match).
 */
export type WriteDecision = 'apply' | false | WriteConflict

/**
 * The one rule of conditional writes, for every storage: what `op` does given the live record
 * of its id (`undefined` when there is none: missing and expired are the same).
 *
 * - `touch` applies to a live record, else `false`; it is never conditional.
 * - `update` and `remove` need a live record (`false` otherwise, whatever `ifVersion` says:
 *   missing wins over conflict), then apply when `ifVersion` is absent or equal to its version.
 * - `set` applies when `ifVersion` is absent, or equal to the live record's version, where no
 *   live record is version 0.
 * - `delete` applies when `ifVersion` is absent, there is no live record (nothing to delete), or
 *   `ifVersion` equals its version.
 *
 * Anything else is `'conflict'`. A storage that reads before it writes decides with this under
 * its lock; one with conditional statements lets the backend check the condition and decides
 * with {@link refusedWrite} when the statement changed nothing.
 *
 * @example
 * ```ts
 * const decision = decideWrite(op, liveRecordOf(op.id))
 * if (decision !== 'apply') return decision // false or 'conflict', nothing written
 * ```
 */
export function decideWrite(op: StorageOperation, live: LiveVersion | undefined): WriteDecision {
  switch (op.type) {
    case 'touch':
      return live === undefined ? false : 'apply'
    case 'update':
    case 'remove':
      if (live === undefined) return false
      return op.ifVersion === undefined || op.ifVersion === live.version ? 'apply' : 'conflict'
    case 'set':
      return op.ifVersion === undefined || op.ifVersion === (live?.version ?? 0) ? 'apply' : 'conflict'
    case 'delete':
      return op.ifVersion === undefined || live === undefined || op.ifVersion === live.version ? 'apply' : 'conflict'
  }
}

/**
 * The outcome of a conditional statement that changed nothing (MySQL's 0 affected rows,
 * DynamoDB's `ConditionalCheckFailedException`), from the live record read after it: `false`
 * when there is none for a write that needs one, `true` for a `delete` that found nothing to
 * delete, `'conflict'` otherwise: the record is at another version, or changed between the
 * statement and the read (the write was not applied either way, and the caller retries).
 *
 * @example
 * ```ts
 * if (result.affectedRows === 0) return refusedWrite(op, await readLiveVersion(op.id))
 * ```
 */
export function refusedWrite(op: StorageOperation, live: LiveVersion | undefined): boolean | WriteConflict {
  if (decideWrite(op, live) === false) return false
  return op.type === 'delete' && live === undefined ? true : 'conflict'
}

/**
 * The version a record gets from a data write that applies: the live record's plus one, or 1
 * when there is none. For a conditional write that is exactly `ifVersion + 1`.
 *
 * @example
 * ```ts
 * nextVersion(undefined) // 1
 * nextVersion({ version: 4 }) // 5
 * ```
 */
export function nextVersion(live: LiveVersion | undefined): number {
  return (live?.version ?? 0) + 1
}

/**
 * Why `ifVersion` cannot be a version to write against, or `undefined` when it can (absent, or
 * a non-negative safe integer).
 *
 * @example
 * ```ts
 * versionProblem(-1) // 'ifVersion is a non-negative integer (0: no live record)'
 * ```
 */
export function versionProblem(ifVersion: unknown): string | undefined {
  if (ifVersion === undefined || (Number.isSafeInteger(ifVersion) && (ifVersion as number) >= 0)) return undefined
  return 'ifVersion is a non-negative integer (0: no live record)'
}
