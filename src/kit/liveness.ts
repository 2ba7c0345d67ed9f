/** The deadlines of a record, as every storage keeps them (epoch ms). */
export interface Deadlines {
  /** Idle deadline. */
  readonly expiresAt: number
  /** Absolute deadline; `undefined` (or `null` from a backend that has not mapped it yet) is none. */
  readonly absoluteExpiresAt?: number | null | undefined
}

/**
 * The instant a record dies: the earlier of its idle and absolute deadlines.
 *
 * @example
 * ```ts
 * deadlineOf({ expiresAt: 2000, absoluteExpiresAt: 1500 }) // 1500
 * ```
 */
export function deadlineOf(record: Deadlines): number {
  const absolute = record.absoluteExpiresAt
  return absolute === undefined || absolute === null || absolute >= record.expiresAt ? record.expiresAt : absolute
}

/**
 * Whether a record is live at `now`: the one liveness rule of every storage. A record is dead
 * at (not only after) its deadline.
 *
 * @example
 * ```ts
 * isLive({ expiresAt: 2000 }, 1999) // true
 * isLive({ expiresAt: 2000 }, 2000) // false
 * ```
 */
export function isLive(record: Deadlines, now: number): boolean {
  return now < deadlineOf(record)
}
