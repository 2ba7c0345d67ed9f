import type { IncomingHttpHeaders } from 'node:http'
import type { SessionError } from './errors.js'

/** A JSON value: what a session can hold. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** The data of a session: string keys to JSON values. */
export type SessionData = Record<string, JsonValue>

export type {
  BatchOutcome,
  SessionRecord,
  SessionRecordInput,
  Storage,
  StorageAdmin,
  StorageCapabilities,
  StorageOperation,
  WriteConflict,
} from './kit/contract.js'

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
  /**
   * Issue (or refresh) the id on the response. `expiresAt` is the session's deadline in epoch ms.
   * `version`, when given, is the version of the session's latest acknowledged write: an
   * identity that can carry it (the cookie identity, signed with the id) hands it back through
   * {@link Identity.versionOf} on the client's next requests, and keeps the one the request
   * carried for the same id when `version` is omitted; one that cannot carry it ignores it.
   */
  set(req: SessionRequest, res: SessionResponse, id: string, expiresAt: number, version?: number): void
  /**
   * Optional: the session version the client holds for candidate `id` of this request (the one
   * it was last issued with), or `undefined` when the credential carries none (issued without a
   * version, or an identity that cannot carry one). Only for ids that {@link Identity.get}
   * returned for this same request; it answers from what `get` already verified.
   */
  versionOf?(req: SessionRequest, id: string): number | undefined
  /**
   * Optional: called when a candidate of this identity won, so the identity can refresh what
   * the client holds (a cookie signed with an older key is re-signed with the newest).
   */
  confirm?(req: SessionRequest, res: SessionResponse, id: string, expiresAt: number): void
  /** Tell the client to forget its id (e.g. clear the cookie). */
  remove(req: SessionRequest, res: SessionResponse): void
  /**
   * Optional: take back what {@link Identity.set} put on `res` for `id` (its Set-Cookie lines,
   * its token header), leaving every other header and every other cookie as it is. The manager
   * calls it when a new id it issued on this response was never stored (the first write of a
   * new session, or of a renewed one, failed) and the headers are not sent yet, so the client
   * is not handed an id that names nothing. Without it the response keeps the id. It must not
   * throw; a throw is ignored (the caller gets the write's own error).
   */
  withdraw?(req: SessionRequest, res: SessionResponse, id: string): void
  /**
   * Optional: set by an identity that carries the whole session instead of an id (the sealed
   * cookie). The manager then keeps that identity's sessions in the request itself: no storage,
   * cache or write queue is involved, and {@link Identity.get} and {@link Identity.set} are not used.
   */
  readonly carrier?: SessionCarrier
}

/**
 * A session as a carrier identity holds it: the whole record travels with the request, and
 * nothing is stored on the server. Timestamps are epoch ms.
 */
export interface CarriedSession {
  /** The session id (renewing gives a new one). */
  readonly id: string
  /** The data, deep-frozen. */
  readonly data: SessionData
  readonly createdAt: number
  /** When its idle deadline last moved: the idle expiry counts from here under the current `maxAge`. */
  readonly touchedAt: number
  /** Idle deadline. */
  readonly expiresAt: number
  /** Absolute deadline; 0 for none. */
  readonly absoluteExpiresAt: number
  /** How many writes made it: 1 for the first. */
  readonly version: number
}

/** What a carrier found in a request. */
export interface OpenedSession {
  readonly session: CarriedSession
  /** It was sealed with an older key: seal it again (with the newest) on this response. */
  readonly olderKey: boolean
}

/**
 * What an identity offers when the session itself travels with the request instead of its id:
 * the manager builds the request's session from {@link SessionCarrier.open} and writes it
 * back with {@link SessionCarrier.seal}; no storage, cache or write queue is involved.
 */
export interface SessionCarrier {
  /**
   * The first session the request carries that `accept` takes (every one that opens, without
   * `accept`), or `undefined`. Values that do not open are no session; this never throws.
   */
  open(req: SessionRequest, accept?: (session: CarriedSession) => boolean): OpenedSession | undefined
  /**
   * Put `session` on the response. Throws `SESSION_HEADERS_SENT` once the headers are sent and
   * `SESSION_TOO_LARGE` when it would not fit, both before the response changes.
   */
  seal(req: SessionRequest, res: SessionResponse, session: CarriedSession): void
  /** Tell the client to forget the session. */
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
  /**
   * A storage failure (`SESSION_STORAGE_FAILED`), a corrupt record (`SESSION_INVALID_RECORD`), a
   * failed request handler (`SESSION_HANDLER_FAILED`), or any other trouble that did not reach a
   * caller: always a {@link SessionError}, so `err.code` is always there.
   */
  error: [error: SessionError]
}
