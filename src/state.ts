import type { SessionPolicy } from './policy.js'
import type { SessionData, SessionRecord, SessionRecordInput } from './types.js'
import { freezeJson, isPlainObject } from './values.js'

/** {@link SessionState.destroyed} in its flags. */
const DESTROYED = 1
/** {@link SessionState.renewed} in its flags. */
const RENEWED = 2
/** {@link SessionState.detached} in its flags. */
const DETACHED = 4

/**
 * What a cached session is: one object per live session in this process, shared by every
 * request that uses it. `data` is deep-frozen and replaced (never changed in place) on write.
 * @internal
 */
export class SessionState {
  /** Bytes of `data` as JSON; -1 until first needed. */
  bytes = -1
  /** {@link DESTROYED}, {@link RENEWED} and {@link DETACHED}: one small integer in the object rather than three fields (16 B less per cached session). */
  #flags = 0
  /** The version of the stored record that `data` is (once pending writes land, before them); 0 while it was never stored. */
  version = 0
  /** When the storage last confirmed `version` (loaded, written, probed), epoch ms by the manager's clock. */
  validatedAt = 0
  /** The name of the identity that issued the session; `undefined` for a record stored without one (accepted through any identity). */
  issuer: string | undefined = undefined
  /**
   * The principal the storage indexes the session under, once queued writes land (the manager's
   * `principal` option); `undefined` for none.
   */
  principal: string | undefined = undefined
  constructor(
    public id: string,
    public data: SessionData,
    public readonly createdAt: number,
    /** Idle deadline (epoch ms) as the storage knows it, or will once queued writes land. */
    public expiresAt: number,
    /** Absolute deadline (epoch ms); 0 for none. */
    public readonly absoluteExpiresAt: number,
  ) {}

  /** Destroyed: here, or the storage no longer has its record. */
  get destroyed(): boolean {
    return (this.#flags & DESTROYED) !== 0
  }
  set destroyed(value: boolean) {
    this.#flags = value ? this.#flags | DESTROYED : this.#flags & ~DESTROYED
  }

  /**
   * Renewed away: a new state under a new id took its place. It is never cached or written
   * again; a request still holding it keeps reading `data` as it was at the renew.
   */
  get renewed(): boolean {
    return (this.#flags & RENEWED) !== 0
  }
  set renewed(value: boolean) {
    this.#flags = value ? this.#flags | RENEWED : this.#flags & ~RENEWED
  }

  /** A write of it failed for good: it may hold data the storage does not, so it is never cached again. */
  get detached(): boolean {
    return (this.#flags & DETACHED) !== 0
  }
  set detached(value: boolean) {
    this.#flags = value ? this.#flags | DETACHED : this.#flags & ~DETACHED
  }

  /** The whole record, as a `set` stores it. */
  record(): SessionRecordInput {
    const record: SessionRecordInput = { data: this.data, createdAt: this.createdAt, expiresAt: this.expiresAt }
    if (this.absoluteExpiresAt !== 0) record.absoluteExpiresAt = this.absoluteExpiresAt
    if (this.issuer !== undefined) record.issuer = this.issuer
    if (this.principal !== undefined) record.principal = this.principal
    return record
  }
}

/**
 * The cached state for the record a storage returned for `id` at `now`, its data deep-frozen, or
 * the problem that makes the record unusable (`"its data is not an object"`). Its absolute
 * deadline is the one `policy` allows now (see `SessionPolicy.absoluteFor`); its idle deadline
 * is the stored one, brought back within `maxAge` when the session is opened (see
 * `SessionPolicy.touchDue`). Liveness is the caller's to check.
 * @internal
 */
export function stateFromRecord(id: string, record: SessionRecord, policy: SessionPolicy, now: number): SessionState | string {
  if (typeof record !== 'object') return 'it is not an object'
  const { data, createdAt, expiresAt } = record
  const absolute = record.absoluteExpiresAt ?? 0
  if (record.id !== undefined && record.id !== id) return 'it belongs to another id'
  if (!isPlainObject(data)) return 'its data is not an object'
  if (!Number.isFinite(createdAt) || !Number.isFinite(expiresAt) || !Number.isFinite(absolute)) return 'its timestamps are missing'
  if (!freezeJson(data, 0)) return 'its data is nested too deeply'
  const state = new SessionState(id, data, createdAt, expiresAt, policy.absoluteFor(createdAt, absolute, now))
  state.version = Number.isSafeInteger(record.version) && record.version > 0 ? record.version : 0
  if (typeof record.issuer === 'string') state.issuer = record.issuer
  if (typeof record.principal === 'string') state.principal = record.principal
  return state
}

/**
 * The state of a session created at `now` with `data`, its deadlines from `policy`.
 * @internal
 */
export function newState(id: string, data: SessionData, now: number, policy: SessionPolicy): SessionState {
  const absolute = policy.absoluteDeadline(now)
  return new SessionState(id, data, now, policy.deadline(absolute, now), absolute)
}
