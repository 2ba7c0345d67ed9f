/**
 * Types `req.session` for Express applications that use `app.use(manager.middleware())`.
 * Type-only: nothing here exists at run time, and Express is never loaded by this library.
 *
 * Express 5's `Request` (in `express-serve-static-core`) is the interface every handler's
 * `req` is typed with, so augmenting it makes `app.get('/', (req) => req.session.get('x'))`
 * typecheck without casts. It is declared present (not optional), like express-session does:
 * it is there in every handler that runs after the middleware.
 *
 * express-session declares its own `req.session`; one program cannot use both declarations.
 * When an app runs express-session on {@link toExpressStore}, import the storages from their
 * subpaths (`caching-session-manager/storages/...`), which do not load this file.
 */
import type { AppSession } from './app-session.js'

declare module 'express-serve-static-core' {
  interface Request {
    /** The session of this request, loaded by `manager.middleware()` before the next handler runs. */
    session: AppSession
  }
  interface Response {
    /** The same session as `req.session`. */
    session: AppSession
  }
}

export type { AppSession }
