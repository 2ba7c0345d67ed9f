/**
 * `caching-session-manager/koa`: types `ctx.session` in every Koa middleware of the program
 * and exports the Koa middleware. Type-only as far as Koa goes: Koa is never loaded by this
 * library; compiling this file needs `@types/koa`.
 *
 * @example
 * ```ts
 * import Koa from 'koa'
 * import { SessionManager } from 'caching-session-manager'
 * import 'caching-session-manager/koa' // types ctx.session
 *
 * const manager = new SessionManager()
 * const app = new Koa()
 * app.use(manager.koa())
 * app.use(async (ctx) => {
 *   await ctx.session.set('views', Number(ctx.session.get('views') ?? 0) + 1)
 * })
 * ```
 */
// Loads Koa's declarations wherever this file's are loaded, so the augmentation below finds its module.
/// <reference types="koa" preserve="true" />
import type { AppSession } from './app-session.js'

declare module 'koa' {
  interface DefaultContext {
    /** The session of this request, loaded by `manager.koa()` before the next middleware runs. */
    get session(): AppSession
    /** Only `null` may be assigned: it destroys the session (koa-session-store's convention). */
    set session(value: AppSession | null)
  }
}

export { createKoaMiddleware, type KoaContextLike, type KoaMiddleware } from './koa-middleware.js'
export type { AppSession, AppSessionData, AppSessionDataType } from './app-session.js'
