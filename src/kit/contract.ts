import type { StorageLimits } from './limits.js'
import type { JsonValue, SessionData } from '../types.js'

/**
 * A session as a storage keeps it. Timestamps are epoch milliseconds.
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
  /**
   * How many data writes the record has had since it was created (1 after its first `set`):
   * every `set`, `update` and `remove` adds one; `touch` never changes it. A write made with
   * `ifVersion` that applies leaves it at exactly `ifVersion + 1`. A record that expired counts
   * as absent: the next `set` starts again at 1.
   */
  version: number
  /**
   * The name of the identity that issued the session (`cookie:sid`, `header:x-session-token`),
   * 1 to {@link MAX_ISSUER_LENGTH} characters: the manager accepts the session only through that
   * identity (or one the manager's `shareSessions` lets share it). `undefined` for a record
   * written without one (before identities were recorded): accepted through any identity. A
   * `set` writes it with the rest of the record; no other write changes it.
   */
  issuer?: string | undefined
  /**
   * The principal the session belongs to (a user id, as the manager's `principal` option
   * derives it from the data), as text of 1 to {@link MAX_PRINCIPAL_LENGTH} characters: a
   * storage that declares {@link StorageCapabilities.principals} indexes it, so
   * {@link Storage.findByPrincipal} lists the sessions of one user. `undefined` for a session
   * without one. A `set` writes it with the rest of the record; an `update` or `remove` changes
   * it only when it carries a `principal`; a touch never does.
   */
  principal?: string | undefined
  /** The id the record belongs to, for storages that keep it inside the record. */
  id?: string | undefined
}

/** Longest {@link SessionRecord.issuer}, in UTF-16 code units (a storage may keep it in a 255-character column). */
export const MAX_ISSUER_LENGTH = 255

/** Longest {@link SessionRecord.principal}, in UTF-16 code units (a storage may keep it in an indexed 255-character column). */
export const MAX_PRINCIPAL_LENGTH = 255

/**
 * What a key change does to the session's principal: `undefined` (or absent) leaves it as it
 * is, `null` clears it, a string replaces it (1 to {@link MAX_PRINCIPAL_LENGTH} characters).
 */
export type PrincipalChange = string | null | undefined

/**
 * One session of a principal, as {@link Storage.findByPrincipal} lists it: the record without
 * its data, with its id.
 */
export interface PrincipalSession {
  /** The session id. */
  readonly id: string
  /** When the session was created (epoch ms). */
  readonly createdAt: number
  /** Its idle deadline (epoch ms). */
  readonly expiresAt: number
  /** Its absolute deadline, if any. */
  readonly absoluteExpiresAt?: number | undefined
  /** Its version (see {@link SessionRecord.version}). */
  readonly version: number
  /** The identity that issued it, when recorded. */
  readonly issuer?: string | undefined
}

/** What `Storage.set` receives: a record whose version the storage assigns. */
export type SessionRecordInput = Omit<SessionRecord, 'version' | 'id'>

/**
 * What a conditional write answers when the live record is not at the version it was made
 * against (`ifVersion`): nothing of it was written. The caller reloads and tries again.
 */
export type WriteConflict = 'conflict'

/**
 * One write, as the write queue hands it to {@link Storage.batch}. `ifVersion` makes a data
 * write conditional, as the method of the same name does (see {@link Storage.set},
 * {@link Storage.update}, {@link Storage.delete}); `touch` is never conditional.
 */
export type StorageOperation =
  | { readonly type: 'set'; readonly id: string; readonly record: SessionRecordInput; readonly ifVersion?: number }
  | {
      readonly type: 'update'
      readonly id: string
      readonly key: string
      readonly value: JsonValue
      readonly expiresAt: number
      readonly ifVersion?: number
      /** The session's principal after this change; absent: unchanged (see {@link PrincipalChange}). */
      readonly principal?: PrincipalChange
    }
  | {
      readonly type: 'remove'
      readonly id: string
      readonly key: string
      readonly expiresAt: number
      readonly ifVersion?: number
      /** The session's principal after this change; absent: unchanged (see {@link PrincipalChange}). */
      readonly principal?: PrincipalChange
    }
  | { readonly type: 'delete'; readonly id: string; readonly ifVersion?: number }
  | { readonly type: 'touch'; readonly id: string; readonly expiresAt: number }

/**
 * The outcome of one operation of a batch: `true` when it was applied, `false` when it
 * needed a live record that the storage does not have (update, remove, touch), `'conflict'`
 * when its `ifVersion` did not match (nothing written), or the error that made this one
 * operation fail. After a `'conflict'` or an error, the later operations of the same session in
 * that batch are not applied and report the same outcome.
 */
export type BatchOutcome = boolean | WriteConflict | Error

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
   * express-session store); `false` when only one process can (LevelDB's lock, memory). A
   * shared storage offers {@link Storage.versions}, and the manager probes it to revalidate
   * what it caches; a storage that is not shared is never probed.
   */
  readonly shared: boolean
  /**
   * The storage indexes each record's {@link SessionRecord.principal} and offers
   * {@link Storage.findByPrincipal}: the manager's `principal` option needs it. Absent means `false`.
   */
  readonly principals?: boolean
  /**
   * What one record can hold (value nesting, data bytes, Unicode of keys and values): the
   * manager refuses in `set()`, with `SESSION_INVALID_VALUE`, a value beyond it before anything
   * changes. Absent: no limit beyond the manager's own. See {@link StorageLimits}.
   */
  readonly limits?: StorageLimits
}

/**
 * The persistent storage contract: what the manager calls. One implementation per backend,
 * in `storages/`; build one on the kit's `AbstractStorage`.
 *
 * Missing is `undefined` (or `false` for writes that need an existing record), never an
 * error; a real failure always rejects. Every data write may be made conditional on the
 * record's version (`ifVersion`); a conditional write that does not match writes nothing and
 * answers `'conflict'`. Expired records are never returned. A storage never retries a failed
 * operation on its own: the manager's write queue retries whole operations.
 */
export interface Storage {
  /** A short name used in error messages, e.g. `"level"`. */
  readonly name: string
  /** What the storage offers; when absent, it is read from the methods present (see {@link capabilitiesOf}). */
  readonly capabilities?: StorageCapabilities
  /** The live record of `id`, or `undefined` when there is none (missing or expired). */
  get(id: string): Promise<SessionRecord | undefined>
  /** Create or replace the whole record of `id`; its version becomes the live record's plus one (1 when there is none). */
  set(id: string, record: SessionRecordInput): Promise<void>
  /**
   * Create or replace the whole record of `id`, on condition that it is at `ifVersion`: `0`
   * means "no live record" (an expired one counts as none) and the new version is 1; `v > 0`
   * means a live record at version `v`, and the new version is `v + 1`. Otherwise nothing is
   * written and it resolves to `'conflict'` (a missing record is a conflict for `v > 0`).
   * Without `ifVersion` it is the unconditional `set`.
   *
   * @example
   * ```ts
   * if ((await storage.set(id, record, 0)) === 'conflict') console.log('someone created it first')
   * ```
   */
  set(id: string, record: SessionRecordInput, ifVersion?: number): Promise<void | WriteConflict>
  /** Set one key of a live record and its idle deadline; the version goes up by one. `false` when there is no live record. */
  update(id: string, key: string, value: JsonValue, expiresAt: number): Promise<boolean>
  /**
   * {@link Storage.update} on condition that the live record is at `ifVersion`: `true` when
   * applied (the version is then `ifVersion + 1`), `false` when there is no live record (that
   * answer wins over a conflict), `'conflict'` when the live record is at another version
   * (nothing written).
   *
   * @example
   * ```ts
   * const outcome = await storage.update(id, 'views', 3, expiresAt, cached.version)
   * if (outcome === 'conflict') cached = await storage.get(id) // and apply the change again
   * ```
   */
  update(id: string, key: string, value: JsonValue, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict>
  /**
   * {@link Storage.update} that also sets the record's principal (`principal`, see
   * {@link PrincipalChange}) in the same write; a storage that does not index principals ignores it.
   */
  update(
    id: string,
    key: string,
    value: JsonValue,
    expiresAt: number,
    ifVersion: number | undefined,
    principal: PrincipalChange,
  ): Promise<boolean | WriteConflict>
  /** Remove one key of a live record and set its idle deadline; the version goes up by one. `false` when there is no live record. */
  remove(id: string, key: string, expiresAt: number): Promise<boolean>
  /** {@link Storage.remove} on condition that the live record is at `ifVersion`; answers as a conditional {@link Storage.update}. */
  remove(id: string, key: string, expiresAt: number, ifVersion?: number): Promise<boolean | WriteConflict>
  /** {@link Storage.remove} that also sets the record's principal in the same write, as {@link Storage.update} does. */
  remove(id: string, key: string, expiresAt: number, ifVersion: number | undefined, principal: PrincipalChange): Promise<boolean | WriteConflict>
  /** Delete the record of `id`; deleting a missing record succeeds. */
  delete(id: string): Promise<void>
  /**
   * Delete the record of `id` on condition that a live record is at `ifVersion`: resolves when
   * it was deleted or there was no live record (nothing to delete), `'conflict'` when the live
   * record is at another version (nothing deleted).
   *
   * @example
   * ```ts
   * if ((await storage.delete(id, cached.version)) === 'conflict') console.log('written elsewhere meanwhile')
   * ```
   */
  delete(id: string, ifVersion?: number): Promise<void | WriteConflict>
  /** Move the idle deadline of a live record without rewriting its data or changing its version. `false` when there is none. */
  touch(id: string, expiresAt: number): Promise<boolean>
  /**
   * Apply several operations, in array order for operations on the same id, and report one
   * outcome per operation. Optional: the write queue uses it when present to send the writes
   * of many sessions in one round trip. Several operations of one id each carry their own
   * `ifVersion` (`v`, `v + 1`, …); once one of them conflicts, the later ones of that id are
   * not applied and report `'conflict'` too.
   */
  batch?(operations: readonly StorageOperation[]): Promise<BatchOutcome[]>
  /**
   * The versions of the live records among `ids`, in one cheap call: absent and expired ids
   * are missing from the map. Required when {@link StorageCapabilities.shared} is `true` (the
   * manager revalidates cached sessions with it); optional otherwise.
   *
   * @example
   * ```ts
   * const versions = await storage.versions!([a, b])
   * if (versions.get(a) !== cachedVersionOfA) reload(a)
   * ```
   */
  versions?(ids: readonly string[]): Promise<Map<string, number>>
  /**
   * The live sessions whose record carries `principal`, from the storage's index (never a scan
   * of every record), oldest first. Required when {@link StorageCapabilities.principals} is
   * `true`; otherwise absent, or rejecting with `SESSION_INVALID_STATE`.
   *
   * @example
   * ```ts
   * for (const session of await storage.findByPrincipal!('42')) console.log(session.id, new Date(session.createdAt))
   * ```
   */
  findByPrincipal?(principal: string): Promise<PrincipalSession[]>
  /**
   * Optional: connect to the backend and check that it can keep sessions (the table or schema
   * is there, created first when the storage creates it), rejecting with why it cannot. What
   * `manager.ready()` calls at start-up; a storage works without it (its first call opens it),
   * and a failed open can be tried again.
   *
   * @example
   * ```ts
   * await storage.open() // rejects at once when MySQL refuses the connection
   * ```
   */
  open?(): Promise<void>
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
  return { batch: typeof storage.batch === 'function', admin, shared: false, principals: false }
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
