/**
 * `caching-session-manager/express`: types `req.session` (and `res.session`) for Express
 * applications that use `app.use(manager.middleware())`. Import it once anywhere in the
 * program (`import 'caching-session-manager/express'`). Type-only as far as Express goes:
 * Express is never loaded by this library; compiling this file needs `@types/express`.
 *
 * Express 5's `Request` (in `express-serve-static-core`) is the interface every handler's
 * `req` is typed with, so augmenting it makes `app.get('/', (req) => req.session.get('x'))`
 * typecheck without casts. It is declared present (not optional), like express-session does:
 * it is there in every handler that runs after the middleware.
 *
 * express-session declares its own `req.session`; one program cannot use both declarations.
 * An app that runs express-session on `toExpressStore` does not import this subpath.
 */
// Loads Express's declarations wherever this file's are loaded, so the augmentation below finds its module.
/// <reference types="express" preserve="true" />
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

export { createNodeMiddleware, type NextFunction, type NodeMiddleware } from './node.js'
export type { AppSession, AppSessionData, AppSessionDataType } from './app-session.js'
