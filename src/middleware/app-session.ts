import type { Session } from '../session.js'
import type { SessionData } from '../types.js'

/**
 * The data type of `req.session` (Express), `ctx.session` (Koa) and `request.session`
 * (Fastify). Empty by default, which means {@link SessionData} (any JSON under any key).
 * Augment it once to type the session data of the whole app, as with express-session's
 * `SessionData`:
 *
 * @example
 * ```ts
 * declare module 'caching-session-manager' {
 *   interface AppSessionData { user: { id: string; name: string }; views: number }
 * }
 * app.get('/', (req, res) => {
 *   const views = req.session.get('views') ?? 0 // number
 * })
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- an open interface, filled in by the application's declaration merging
export interface AppSessionData {}

/** {@link AppSessionData} once augmented; {@link SessionData} while it is empty. */
export type AppSessionDataType = [keyof AppSessionData] extends [never] ? SessionData : AppSessionData

/** The type of the session the framework adapters attach to each request. */
export type AppSession = Session<AppSessionDataType>
