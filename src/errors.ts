/**
 * Stable error codes carried by {@link SessionError}. Each is documented in the README
 * under "Errors"; the strings never change between minor versions.
 */
export type SessionErrorCode =
  /** A value given to `set` is not JSON (function, symbol, BigInt, cycle, too deep). */
  | 'SESSION_INVALID_VALUE'
  /** A key given to `get`/`set`/`remove` is not a non-empty string within the length limit. */
  | 'SESSION_INVALID_KEY'
  /** The serialized session would exceed `maxSessionBytes`. */
  | 'SESSION_TOO_LARGE'
  /** The session was destroyed (here or, as storage shows, by another process). */
  | 'SESSION_DESTROYED'
  /** A write was not acknowledged by the storage after the bounded retries. */
  | 'SESSION_STORAGE_FAILED'
  /**
   * The storage could not be read on a cache miss; or `manager.ready()` could not open the storage
   * (or the invalidation bus), its message then saying why in the backend's words; HTTP status 503.
   */
  | 'SESSION_STORAGE_UNAVAILABLE'
  /** Too many writes are waiting for the storage; HTTP status 503. */
  | 'SESSION_QUEUE_FULL'
  /** The manager was closed. */
  | 'SESSION_CLOSED'
  /** A new session needs its id issued, but the response headers were already sent. */
  | 'SESSION_HEADERS_SENT'
  /** A new session needs its id issued, but no identity matches the request. */
  | 'SESSION_NO_IDENTITY'
  /** A storage returned a record that cannot be used (not JSON, no metadata, other id). */
  | 'SESSION_INVALID_RECORD'
  /** The call is not allowed in the manager's (or storage's) current state, or the storage does not offer it. */
  | 'SESSION_INVALID_STATE'
  /** A storage's backend failed an operation (lost connection, disk error); its error is the `cause`. */
  | 'SESSION_STORAGE_ERROR'
  /** A storage was given an operation it cannot apply (not an object, an id or key that is not a string, a deadline that is not a number, an id the backend cannot hold). */
  | 'SESSION_INVALID_OPERATION'
  /**
   * Emitted on the manager's `error` event when a request handler run by a middleware (its
   * `next`) threw or rejected and nothing else could report it; `cause` is what it threw.
   */
  | 'SESSION_HANDLER_FAILED'
  /**
   * A write kept meeting newer versions written by other processes and was given up after its
   * bounded rebases (or it was a whole-record write that cannot be rebased); nothing of it was
   * stored. HTTP status 409.
   */
  | 'SESSION_CONFLICT'
  /**
   * Another request renewed the session after this request loaded it: this request keeps its old
   * id and what it read, but cannot write, renew or destroy the session. HTTP status 409.
   */
  | 'SESSION_RENEWED'

/** Options of {@link SessionError}. */
export interface SessionErrorOptions {
  /** The underlying error, e.g. the storage client's. */
  cause?: unknown
  /** HTTP status a middleware should answer with; set for codes that map to one. */
  status?: number
  /** The session id concerned, when there is one. */
  sessionId?: string
}

const DEFAULT_STATUS: Partial<Record<SessionErrorCode, number>> = {
  SESSION_STORAGE_UNAVAILABLE: 503,
  SESSION_STORAGE_FAILED: 503,
  SESSION_STORAGE_ERROR: 503,
  SESSION_QUEUE_FULL: 503,
  SESSION_CLOSED: 503,
  SESSION_CONFLICT: 409,
  SESSION_RENEWED: 409,
  SESSION_TOO_LARGE: 500,
  SESSION_INVALID_VALUE: 500,
}

/**
 * The one error type of this library. `code` is stable and meant for programs;
 * `message` is for people.
 *
 * @example
 * ```ts
 * try {
 *   await session.set('user', user)
 * } catch (err) {
 *   if (err instanceof SessionError && err.code === 'SESSION_STORAGE_FAILED') retryLater()
 * }
 * ```
 */
export class SessionError extends Error {
  /** Stable machine-readable code. */
  readonly code: SessionErrorCode
  /** HTTP status for middleware (`503` for storage trouble), if the code has one. */
  readonly status: number | undefined
  /** Same as `status`, for frameworks that read `statusCode`. */
  readonly statusCode: number | undefined
  /** The session id concerned, when known. */
  readonly sessionId: string | undefined

  constructor(code: SessionErrorCode, message: string, options: SessionErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'SessionError'
    this.code = code
    this.status = options.status ?? DEFAULT_STATUS[code]
    this.statusCode = this.status
    this.sessionId = options.sessionId
  }
}

/**
 * The message every storage failure the manager reports starts with. It is all an HTTP client
 * may learn: a framework's default error reply shows `err.message` (Fastify sends it in its JSON
 * body, Express in its development error page), so the storage's own text (a host name and port
 * in `connect ECONNREFUSED`, a user name in `Access denied for user`) stays on `cause`, for logs.
 */
export const STORAGE_UNAVAILABLE = 'the session storage is unavailable'

/**
 * A storage failure as the manager reports it: the public {@link STORAGE_UNAVAILABLE} message
 * with what was being done (`"a session could not be read"`, which must name nothing of the
 * storage), and the storage's error as `cause`.
 *
 * @example
 * ```ts
 * throw storageUnavailable('SESSION_STORAGE_UNAVAILABLE', 'a session could not be read', err)
 * // SessionError: the session storage is unavailable (a session could not be read)
 * ```
 */
export function storageUnavailable(
  code: 'SESSION_STORAGE_UNAVAILABLE' | 'SESSION_STORAGE_FAILED',
  what: string,
  cause: unknown,
  sessionId?: string,
): SessionError {
  return new SessionError(code, `${STORAGE_UNAVAILABLE} (${what})`, sessionId === undefined ? { cause } : { cause, sessionId })
}

/** True when `err` is a {@link SessionError}, optionally with the given code. */
export function isSessionError(err: unknown, code?: SessionErrorCode): err is SessionError {
  return err instanceof SessionError && (code === undefined || err.code === code)
}
