// `caching-session-manager/node`: the node:http / Connect middleware and the request and
// response types once it ran. No framework types: Express's `req.session` typing is in
// `caching-session-manager/express`.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Session } from '../session.js'
import type { SessionData, SessionRequest, SessionResponse } from '../types.js'

/** What the middleware needs of the manager. */
export interface SessionResolver<D extends object = SessionData> {
  resolve(req: SessionRequest, res: SessionResponse): Session<D> | Promise<Session<D>>
  emit(event: 'error', error: Error): boolean
}

/**
 * `next` of Connect/Express; called with the error when the session could not be loaded. On
 * node:http it may be an async handler: a rejection it returns is reported as an `error` event.
 */
export type NextFunction = (error?: unknown) => void | Promise<void>

/** A node:http request once the middleware ran. */
export type RequestWithSession<D extends object = SessionData> = IncomingMessage & { session?: Session<D> }

/** A node:http response once the middleware ran. */
export type ResponseWithSession<D extends object = SessionData> = ServerResponse & { session?: Session<D> }

/**
 * The `(req, res, next)` middleware returned by `manager.middleware()`. It takes any node
 * request, so Express accepts it whatever `D` is; after it ran, `req.session` is a
 * `Session<D>` (read it as `RequestWithSession<D>` on node:http, or as Express's `req.session`,
 * typed by `AppSessionData`).
 */
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- kept so `NodeMiddleware<D>` still says which sessions it attaches
export type NodeMiddleware<D extends object = SessionData> = (req: IncomingMessage, res: ServerResponse, next: NextFunction) => void

/**
 * Build the node:http / Connect / Express middleware of a manager. A cache hit calls `next`
 * synchronously; a miss reads the storage first; a storage outage calls `next(err)` with
 * `err.status === 503` and `err.code === 'SESSION_STORAGE_UNAVAILABLE'`.
 *
 * @example
 * ```ts
 * const sessions = manager.middleware()
 * app.use(sessions)                       // Express / Connect
 * createServer((req, res) => sessions(req, res, (err) => handle(err, req, res)))  // node:http
 * ```
 */
export function createNodeMiddleware<D extends object>(manager: SessionResolver<D>): NodeMiddleware<D> {
  // One function for the life of the middleware, not one per request.
  const report = (err: unknown): void => {
    manager.emit('error', err instanceof Error ? err : new Error(String(err)))
  }
  return function sessionMiddleware(req, res, next) {
    let resolved: Session<D> | Promise<Session<D>>
    try {
      resolved = manager.resolve(req, res)
    } catch (err) {
      void Promise.resolve(next(err)).catch(report)
      return
    }
    if (!(resolved instanceof Promise)) {
      attach(req, res, resolved)
      const handled = next()
      if (handled instanceof Promise) handled.catch(report)
      return
    }
    resolved
      .then(
        (session) => {
          attach(req, res, session)
          return next()
        },
        (err: unknown) => next(err),
      )
      // `next` itself threw or its promise rejected: report it rather than leave it unhandled.
      .catch(report)
  }
}

function attach<D extends object>(req: IncomingMessage, res: ServerResponse, session: Session<D>): void {
  ;(req as RequestWithSession<D>).session = session
  ;(res as ResponseWithSession<D>).session = session
}
