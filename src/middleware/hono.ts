/**
 * `caching-session-manager/hono`: the Hono middleware, for Hono on Node (`@hono/node-server`).
 * The session is on `c.get('session')`, typed through Hono's `Variables` ({@link SessionEnv}).
 * Type-only as far as Hono goes: Hono is never loaded by this library; compiling this file
 * needs `hono` (which ships its types).
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { serve } from '@hono/node-server'
 * import { SessionManager } from 'caching-session-manager'
 * import { honoSession, type SessionEnv } from 'caching-session-manager/hono'
 *
 * const manager = new SessionManager()
 * const app = new Hono<SessionEnv>()
 * app.use(honoSession({ manager }))
 * app.get('/', async (c) => c.json({ views: await c.get('session').update('views', (n) => Number(n ?? 0) + 1) }))
 * serve({ fetch: app.fetch, port: 3000 })
 * ```
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Context, MiddlewareHandler } from 'hono'
import { isSessionError, type SessionErrorCode } from '../errors.js'
import type { Session } from '../session.js'
import type { SessionRequest, SessionResponse } from '../types.js'
import type { AppSession } from './app-session.js'
import type { SessionResolver } from './node.js'

/** The `Variables` the middleware sets: `c.get('session')` is the request's session. */
export interface SessionVariables {
  /** The session of this request, loaded before the next handler runs. */
  session: AppSession
}

/** The Hono `Env` of an app that uses the middleware: `new Hono<SessionEnv>()` types `c.get('session')`. */
export interface SessionEnv {
  Variables: SessionVariables
}

/** The middleware {@link honoSession} and {@link createHonoMiddleware} return. */
export type HonoSessionMiddleware = MiddlewareHandler<SessionEnv>

/** Options of {@link honoSession}. */
export interface HonoSessionOptions {
  /** The session manager whose sessions the middleware attaches (a `SessionManager`). */
  manager: SessionResolver<object>
}

/** What the client is told when the session cannot be loaded: no storage internals. */
const PUBLIC_MESSAGES: Partial<Record<SessionErrorCode, string>> = {
  SESSION_STORAGE_UNAVAILABLE: 'the session storage is unavailable; try again shortly',
  SESSION_CLOSED: 'the server is shutting down; try again shortly',
}
const DEFAULT_PUBLIC_MESSAGE = 'sessions are unavailable; try again shortly'

/** The request as the identities read it: node's headers and socket on `@hono/node-server`, the URL's protocol for `secure: 'auto'`. */
interface HonoRequest extends SessionRequest {
  readonly headers: IncomingHttpHeaders
  readonly url: string
  readonly socket: object | undefined
  readonly protocol: 'http' | 'https'
}

/**
 * Collects the headers the identities write (Set-Cookie, the header token) during the request
 * and adds them to Hono's response once the handlers have answered, so they arrive with the
 * cookies other middleware set through `c.header` or `hono/cookie`, whatever response the
 * handler returned.
 */
class HonoHeaders implements SessionResponse {
  readonly #headers = new Map<string, number | string | readonly string[]>()
  #sent = false

  getHeader(name: string): number | string | readonly string[] | undefined {
    return this.#headers.get(name.toLowerCase())
  }

  setHeader(name: string, value: number | string | readonly string[]): this {
    this.#headers.set(name.toLowerCase(), value)
    return this
  }

  removeHeader(name: string): void {
    this.#headers.delete(name.toLowerCase())
  }

  get headersSent(): boolean {
    return this.#sent
  }

  /** Add the collected headers to the response of `c`; later writes find the headers sent. */
  applyTo(c: Context): void {
    this.#sent = true
    for (const [name, value] of this.#headers) {
      if (name === 'set-cookie' || typeof value === 'object') {
        for (const line of typeof value === 'object' ? value : [String(value)]) c.header(name, line, { append: true })
      } else {
        c.header(name, String(value))
      }
    }
  }
}

/**
 * Build the Hono middleware of a manager. It loads the request's session before the next
 * handler runs (a cache hit adds no promise of its own) and sets it as `c.get('session')`; the
 * identities' headers (Set-Cookie, the header token) go out on Hono's response, next to the
 * cookies other middleware set. `CookieIdentity`'s `secure: 'auto'` follows the request URL's
 * protocol (`https:`), or `X-Forwarded-Proto` with `trustProxy`.
 *
 * A storage outage answers 503 with a JSON body holding only the error's code and a public
 * message (`{ "error": "SESSION_STORAGE_UNAVAILABLE", "message": "..." }`); the error itself,
 * with the storage's error as `cause`, goes to the manager's `error` event. Any other failure is thrown
 * to Hono's error handler. A session already set on the context by another session middleware
 * (hono-sessions) is a `TypeError`: use one session middleware per app.
 *
 * Writes are write-through: `await c.get('session').set(key, value)` before answering. A new id
 * issued after the handler answered is refused with `SESSION_HEADERS_SENT`.
 *
 * @example
 * ```ts
 * const app = new Hono<SessionEnv>()
 * app.use(createHonoMiddleware(manager))
 * app.post('/login', async (c) => {
 *   await c.get('session').renew() // a new id on every privilege change
 *   await c.get('session').set('user', 'ada')
 *   return c.json({ ok: true })
 * })
 * ```
 */
export function createHonoMiddleware<D extends object>(manager: SessionResolver<D>): HonoSessionMiddleware {
  return async function honoSessionMiddleware(c, next) {
    if ((c.get('session') as unknown) !== undefined) {
      throw new TypeError("c.get('session') is already set by another middleware (hono-sessions?); use one session middleware per app")
    }
    const headers = new HonoHeaders()
    const resolved = manager.resolve(requestOf(c), headers)
    let session: Session<D>
    if (resolved instanceof Promise) {
      try {
        session = await resolved
      } catch (err) {
        if (!isSessionError(err) || err.status !== 503) throw err
        manager.emit('error', err)
        return c.json({ error: err.code, message: PUBLIC_MESSAGES[err.code] ?? DEFAULT_PUBLIC_MESSAGE }, 503)
      }
    } else {
      session = resolved
    }
    c.set('session', session as unknown as AppSession)
    await next()
    headers.applyTo(c)
  }
}

/**
 * The middleware of `caching-session-manager/hono`, with the manager as an option (the way
 * hono-sessions' `sessionMiddleware` takes its options). See {@link createHonoMiddleware}.
 *
 * @example
 * ```ts
 * import { honoSession, type SessionEnv } from 'caching-session-manager/hono'
 * const app = new Hono<SessionEnv>()
 * app.use(honoSession({ manager }))
 * ```
 */
export function honoSession(options: HonoSessionOptions): HonoSessionMiddleware {
  const manager = (options as Partial<HonoSessionOptions> | undefined)?.manager
  if (typeof manager !== 'object' || manager === null || typeof manager.resolve !== 'function') {
    throw new TypeError('caching-session-manager/hono option "manager" must be a SessionManager')
  }
  return createHonoMiddleware(manager)
}

export default honoSession

/** The identities' view of a Hono request: node's own headers and socket when served by `@hono/node-server`. */
function requestOf(c: Context): HonoRequest {
  const href = c.req.url
  const protocol = href.startsWith('https:') ? 'https' : 'http'
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  if (incoming?.headers !== undefined && typeof incoming.url === 'string') {
    return { headers: incoming.headers, url: incoming.url, socket: incoming.socket, protocol }
  }
  // Another runtime, or `app.request()`: the Fetch request's headers and URL.
  const url = new URL(href)
  const headers: IncomingHttpHeaders = {}
  c.req.raw.headers.forEach((value, name) => {
    headers[name] = value
  })
  headers.host ??= url.host
  return { headers, url: `${url.pathname}${url.search}`, socket: undefined, protocol }
}
