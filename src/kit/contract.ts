import type { JsonValue, SessionData } from '../types.js'

/**
 * A session as a storage keeps it. Timestamps are epoch milliseconds.
 * `version` is incremented by the storage on every write.
 */
export interface SessionRecord {
  /** The session's data. */
  data: SessionData
  /** When the session was created. */
  createdAt: number
  /** Idle deadline: the session is dead at or after this instant. Slides on access. */
  expiresAt: number
  /**
   * Hard deadline from creation (`absoluteMaxAge`), if any. Never slides. "No absolute
   * deadline" is `undefined` (a backend maps its own encoding, such as SQL `NULL`, to it).
   */
  absoluteExpiresAt?: number | undefined
  /** Incremented by the storage on every write of this record. */
  version: number
  /** The id the record belongs to, for storages that keep it inside the record. */
  id?: string | undefined
}

/** What `Storage.set` receives: a record whose version the storage assigns. */
export type SessionRecordInput = Omit<SessionRecord, 'version' | 'id'>

/** One write, as the write queue hands it to {@link Storage.batch}. */
export type StorageOperation =
  | { readonly type: 'set'; readonly id: string; readonly record: SessionRecordInput }
  | { readonly type: 'update'; readonly id: string; readonly key: string; readonly value: JsonValue; readonly expiresAt: number }
  | { readonly type: 'remove'; readonly id: string; readonly key: string; readonly expiresAt: number }
  | { readonly type: 'delete'; readonly id: string }
  | { readonly type: 'touch'; readonly id: string; readonly expiresAt: number }

/**
 * The outcome of one operation of a batch: `true` when it was applied, `false` when it
 * needed a live record that the storage does not have (update, remove, touch), or the
 * error that made this one operation fail.
 */
export type BatchOutcome = boolean | Error

/**
 * What a storage declares it offers. The storage contract suite checks each storage for what
 * it declares, and only for that.
 */
export interface StorageCapabilities {
  /** `batch()` is offered: the write queue sends the writes of many sessions in one call. */
  readonly batch: boolean
  /** The operators' side ({@link StorageAdmin}: `length`, `all`, `clear`, `cleanup`) works. */
  readonly admin: boolean
  /**
   * Several processes can use the same records at once (MySQL, DynamoDB, a Redis-backed
   * express-session store); `false` when only one process can (LevelDB's lock, memory).
   */
  readonly shared: boolean
}

/**
 * The persistent storage contract: what the manager calls. One implementation per backend,
 * in `storages/`; build one on the kit's `AbstractStorage`.
 *
 * Missing is `undefined` (or `false` for writes that need an existing record), never an
 * error; a real failure always rejects. Expired records are never returned. A storage never
 * retries a failed operation on its own: the manager's write queue retries whole operations.
 */
export interface Storage {
  /** A short name used in error messages, e.g. `"level"`. */
  readonly name: string
  /** What the storage offers; when absent, it is read from the methods present (see {@link capabilitiesOf}). */
  readonly capabilities?: StorageCapabilities
  /** The live record of `id`, or `undefined` when there is none (missing or expired). */
  get(id: string): Promise<SessionRecord | undefined>
  /** Create or replace the whole record of `id`. */
  set(id: string, record: SessionRecordInput): Promise<void>
  /** Set one key of a live record and its idle deadline. `false` when there is no live record. */
  update(id: string, key: string, value: JsonValue, expiresAt: number): Promise<boolean>
  /** Remove one key of a live record and set its idle deadline. `false` when there is no live record. */
  remove(id: string, key: string, expiresAt: number): Promise<boolean>
  /** Delete the record of `id`; deleting a missing record succeeds. */
  delete(id: string): Promise<void>
  /** Move the idle deadline of a live record without rewriting its data. `false` when there is none. */
  touch(id: string, expiresAt: number): Promise<boolean>
  /**
   * Apply several operations, in array order for operations on the same id, and report one
   * outcome per operation. Optional: the write queue uses it when present to send the writes
   * of many sessions in one round trip.
   */
  batch?(operations: readonly StorageOperation[]): Promise<BatchOutcome[]>
  /** Release the backend's resources. Idempotent. */
  close(): Promise<void>
}

/** What operators call on a storage: counting, listing and emptying it, and removing expired records. */
export interface StorageAdmin {
  /** Number of live records. */
  length(): Promise<number>
  /** Every live record with its id. */
  all(): AsyncIterable<[string, SessionRecord]>
  /** Delete every record. */
  clear(): Promise<void>
  /** Delete records expired at `now` (default: the current time), in bounded batches; resolves to how many. */
  cleanup(now?: number): Promise<number>
}

/** What {@link capabilitiesOf} needs to look at: any storage, with or without its operators' side. */
type AnyStorage = Storage & Partial<Record<keyof StorageAdmin, unknown>>

/**
 * What `storage` offers: its declared {@link StorageCapabilities}, or, for a storage that
 * declares none, what its methods show (`shared` is then `false`).
 *
 * @example
 * ```ts
 * if (capabilitiesOf(storage).admin) console.log(await (storage as Storage & StorageAdmin).length())
 * ```
 */
export function capabilitiesOf(storage: AnyStorage): StorageCapabilities {
  if (storage.capabilities !== undefined) return storage.capabilities
  const admin = (['length', 'all', 'clear', 'cleanup'] as const).every((method) => typeof storage[method] === 'function')
  return { batch: typeof storage.batch === 'function', admin, shared: false }
}

/**
 * Whether `storage` offers the operators' side ({@link StorageAdmin}) and declares it.
 *
 * @example
 * ```ts
 * if (hasAdmin(storage)) await storage.cleanup()
 * ```
 */
export function hasAdmin<S extends Storage>(storage: S): storage is S & StorageAdmin {
  return capabilitiesOf(storage).admin
}
