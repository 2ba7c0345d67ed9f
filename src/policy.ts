import type { SessionState } from './state.js'

/** A cached session that can be served. */
export const LIVE = 0
/** Past its idle deadline here; the storage may know a later one (another process touched it). */
export const IDLE_EXPIRED = 1
/** Past its absolute deadline: dead everywhere, for good. */
export const ABSOLUTE_EXPIRED = 2
/** What {@link SessionPolicy.status} says of a cached session. */
export type SessionStatus = typeof LIVE | typeof IDLE_EXPIRED | typeof ABSOLUTE_EXPIRED

/** The settings the policy is made of, durations in milliseconds. */
export interface PolicySettings {
  readonly maxAgeMs: number
  /** 0 for no absolute deadline. */
  readonly absoluteMaxAgeMs: number
  readonly touchAfterMs: number
  readonly maxSessionBytes: number
  readonly now: () => number
}

/**
 * The rules of time and size a manager applies to its sessions: the clock, the deadlines of a
 * session accessed or created now, whether a cached session is live, and when its deadline is
 * due to be moved in storage. Pure: it reads and changes nothing.
 * @internal
 */
export class SessionPolicy {
  readonly now: () => number
  readonly maxSessionBytes: number
  readonly #maxAgeMs: number
  readonly #absoluteMaxAgeMs: number
  readonly #touchAfterMs: number

  constructor(settings: PolicySettings) {
    this.now = settings.now
    this.maxSessionBytes = settings.maxSessionBytes
    this.#maxAgeMs = settings.maxAgeMs
    this.#absoluteMaxAgeMs = settings.absoluteMaxAgeMs
    this.#touchAfterMs = settings.touchAfterMs
  }

  /** The idle deadline of a session accessed at `now`, never past its absolute deadline (0 for none). */
  deadline(absoluteExpiresAt: number, now: number): number {
    const idle = now + this.#maxAgeMs
    return absoluteExpiresAt !== 0 && absoluteExpiresAt < idle ? absoluteExpiresAt : idle
  }

  /** The absolute deadline of a session created at `now`; 0 for none. */
  absoluteDeadline(now: number): number {
    return this.#absoluteMaxAgeMs === 0 ? 0 : now + this.#absoluteMaxAgeMs
  }

  /**
   * The absolute deadline of a stored session under the current configuration, worked out once
   * when it is loaded: the earlier of the deadline its record carries (`stored`, 0 for none) and
   * its creation plus `absoluteMaxAge`, so adding or lowering `absoluteMaxAge` applies to
   * sessions created before. A creation time after `now` (a process with a skewed clock wrote
   * it) counts as `now`. 0 for none.
   */
  absoluteFor(createdAt: number, stored: number, now: number): number {
    if (this.#absoluteMaxAgeMs === 0) return stored
    const configured = (createdAt < now ? createdAt : now) + this.#absoluteMaxAgeMs
    return stored !== 0 && stored < configured ? stored : configured
  }

  /** Whether the cached `state` can be served at `now`. */
  status(state: SessionState, now: number): SessionStatus {
    if (state.absoluteExpiresAt !== 0 && now >= state.absoluteExpiresAt) return ABSOLUTE_EXPIRED
    return now < state.expiresAt ? LIVE : IDLE_EXPIRED
  }

  /**
   * The deadline to move `state` to when accessed at `now`, or `undefined` while its last touch
   * is recent enough (`touchAfter`). A deadline beyond `now + maxAge` (or past the absolute
   * deadline) is always due: it is brought back to what the configuration allows, so a deadline
   * written far ahead (a process with a skewed clock, a larger `maxAge` before) never keeps a
   * session alive past `maxAge` of idleness. Two comparisons: it runs on every cache hit.
   */
  touchDue(state: SessionState, now: number): number | undefined {
    const deadline = this.deadline(state.absoluteExpiresAt, now)
    const gain = deadline - state.expiresAt
    return gain >= this.#touchAfterMs || gain < 0 ? deadline : undefined
  }
}
