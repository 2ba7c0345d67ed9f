import { SessionError, isSessionError, type SessionErrorCode } from '../errors.js'

/**
 * The errors a storage reports, each a {@link SessionError} made here and recognised by its
 * `code` (never by its message): `SESSION_CLOSED`, `SESSION_STORAGE_ERROR` (the backend's own
 * error is the `cause`), `SESSION_INVALID_RECORD`, `SESSION_INVALID_OPERATION`,
 * `SESSION_INVALID_STATE`.
 */

/**
 * The storage was closed: every later call rejects with this.
 *
 * @example
 * ```ts
 * throw storageClosed('level') // SessionError SESSION_CLOSED: "the level storage is closed"
 * ```
 */
export function storageClosed(storage: string): SessionError {
  return new SessionError('SESSION_CLOSED', `the ${storage} storage is closed`)
}

/**
 * A failure of the backend while doing `action` (`"read a session"`), with the backend's error
 * as `cause`. The message says only which storage failed at what: the backend's own text (a
 * host and port, a user name) is on `cause`, for logs, and never in a message that a framework's
 * error reply could show. A {@link SessionError} passes through unchanged, so wrapping twice is
 * harmless.
 *
 * @example
 * ```ts
 * catch (err) { throw storageError('mysql', 'read a session', err) } // "the mysql storage could not read a session"
 * ```
 */
export function storageError(storage: string, action: string, cause: unknown): SessionError {
  if (cause instanceof SessionError) return cause
  return new SessionError('SESSION_STORAGE_ERROR', `the ${storage} storage could not ${action}`, { cause })
}

/**
 * A backend failure with a message of the backend's own (an open that found the database
 * locked, say); `cause` is the backend's error.
 *
 * @example
 * ```ts
 * throw storageFailure(`the level storage cannot open "${location}": another process holds its lock`, err)
 * ```
 */
export function storageFailure(message: string, cause: unknown): SessionError {
  return new SessionError('SESSION_STORAGE_ERROR', message, { cause })
}

/**
 * The backend holds something under `id` that is not a usable session record: `problem` says
 * why (`"its data is not a JSON object"`). The manager treats it as no session and reports it.
 *
 * @example
 * ```ts
 * throw invalidRecord('dynamodb', 'its data is not a map of JSON texts', id)
 * ```
 */
export function invalidRecord(storage: string, problem: string, id?: string): SessionError {
  return new SessionError(
    'SESSION_INVALID_RECORD',
    `the ${storage} storage holds an unusable record for a session (${problem})`,
    id === undefined ? {} : { sessionId: id },
  )
}

/**
 * An operation the storage cannot apply: `problem` says why.
 *
 * @example
 * ```ts
 * return invalidOperation('level', 'ids are 1 to 255 printable ASCII characters')
 * ```
 */
export function invalidOperation(storage: string, problem: string): SessionError {
  return new SessionError('SESSION_INVALID_OPERATION', `the ${storage} storage cannot apply an operation: ${problem}`)
}

/**
 * The storage cannot do `method` (it does not declare that capability, or its backend lacks
 * what it needs); `reason` says why.
 *
 * @example
 * ```ts
 * throw unsupported('express-store', 'cleanup', 'the store has no all() method')
 * ```
 */
export function unsupported(storage: string, method: string, reason = 'this storage does not offer it'): SessionError {
  return new SessionError('SESSION_INVALID_STATE', `the ${storage} storage cannot ${method}(): ${reason}`)
}

/**
 * Whether `err` is a storage error with `code`: recognition by code, never by message.
 *
 * @example
 * ```ts
 * if (hasCode(err, 'SESSION_CLOSED')) return
 * ```
 */
export function hasCode(err: unknown, code: SessionErrorCode): err is SessionError {
  return isSessionError(err, code)
}

/**
 * `err` as an Error (a thrown string or object becomes one).
 *
 * @example
 * ```ts
 * outcomes[i] = toError(err)
 * ```
 */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/**
 * The text that best says what went wrong: the message, else a code (`ECONNREFUSED`), else the name.
 *
 * @example
 * ```ts
 * messageOf(new Error('boom')) // 'boom'
 * ```
 */
export function messageOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const code = (err as { code?: unknown }).code
  return err.message || (typeof code === 'string' ? code : '') || err.name
}
