import type { IncomingHttpHeaders } from 'node:http'

/** A JSON value: what a session can hold. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** The data of a session: string keys to JSON values. */
export type SessionData = Record<string, JsonValue>

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
  /** Hard deadline from creation (`absoluteMaxAge`), if any. Never slides. */
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
 * The persistent storage contract. One implementation per backend, in `storages/`.
 *
 * Missing is `undefined` (or `false` for writes that need an existing record), never an
 * error; a real failure always rejects. Expired records are never returned.
 */
export interface Storage {
  /** A short name used in error messages, e.g. `"level"`. */
  readonly name: string
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
  /** Number of live records. */
  length(): Promise<number>
  /** Every live record with its id. */
  all(): AsyncIterable<[string, SessionRecord]>
  /** Delete every record. */
  clear(): Promise<void>
  /** Delete records expired at `now` (default: the current time), in bounded batches; resolves to how many. */
  cleanup(now?: number): Promise<number>
  /** Release the backend's resources. Idempotent. */
  close(): Promise<void>
}

/** The request as identities see it: node's `IncomingMessage` and every framework's raw request fit. */
export interface SessionRequest {
  readonly headers: IncomingHttpHeaders
  readonly url?: string | undefined
  readonly socket?: object | null | undefined
}

/** Where identities write headers: node's `ServerResponse` fits; frameworks pass adapters. */
export interface SessionResponse {
  getHeader(name: string): number | string | readonly string[] | undefined
  setHeader(name: string, value: number | string | readonly string[]): unknown
  removeHeader?(name: string): unknown
  readonly headersSent: boolean
}

/**
 * The identity contract: where a request carries its session id and how a response carries
 * a new one. Cookie and header identities are in `identities/`.
 */
export interface Identity {
  /** A short name for logs and errors, e.g. `cookie:sid`. */
  readonly name: string
  /** Whether this identity is in scope for the request (host and path). */
  matches(req: SessionRequest): boolean
  /** Candidate session ids carried by the request, best first. Malformed or badly signed values are left out. */
  get(req: SessionRequest): readonly string[]
  /** Issue (or refresh) the id on the response. `expiresAt` is the session's deadline in epoch ms. */
  set(req: SessionRequest, res: SessionResponse, id: string, expiresAt: number): void
  /**
   * Optional: called when a candidate of this identity won, so the identity can refresh what
   * the client holds (a cookie signed with an older key is re-signed with the newest).
   */
  confirm?(req: SessionRequest, res: SessionResponse, id: string, expiresAt: number): void
  /** Tell the client to forget its id (e.g. clear the cookie). */
  remove(req: SessionRequest, res: SessionResponse): void
}

/** Events emitted by {@link SessionManager}. */
export interface SessionEvents {
  /** A new session was first written (its id issued). */
  create: [id: string]
  /** A session got a new id. */
  renew: [newId: string, oldId: string]
  /** A session was destroyed. */
  destroy: [id: string]
  /** A session was found expired and dropped. */
  expire: [id: string]
  /** A session left the in-process cache (it stays in storage). */
  evict: [id: string]
  /** A storage failure, a corrupt record, or any other trouble that did not reach a caller. */
  error: [error: Error]
}
