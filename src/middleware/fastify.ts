/**
 * `caching-session-manager/fastify`: the Fastify plugin, and the `request.session` typing of
 * every Fastify handler in the program. Fastify is never loaded by this library; compiling
 * this file needs `fastify` (which ships its types).
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { SessionManager } from 'caching-session-manager'
 * import fastifySession from 'caching-session-manager/fastify'
 *
 * const manager = new SessionManager()
 * const app = Fastify()
 * await app.register(fastifySession, { manager })
 * ```
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyPluginOptions, FastifyReply, FastifyRequest } from 'fastify'
import type { Session } from '../session.js'
import type { SessionResponse } from '../types.js'
import type { AppSession } from './app-session.js'
import { FrameworkRequest } from './framework-request.js'
import type { SessionResolver } from './node.js'

// Types `request.session` in every Fastify handler (type-only; Fastify is never loaded by this library).
declare module 'fastify' {
  interface FastifyRequest {
    /** The session of this request, loaded by the plugin's `onRequest` hook. */
    session: AppSession
  }
}

/** A Fastify plugin as {@link createFastifyPlugin} returns it: registered without encapsulation. */
export type FastifySessionPlugin<Options extends FastifyPluginOptions = Record<never, never>> = FastifyPluginCallback<Options> & {
  readonly [key: symbol]: unknown
}

/** Options of the `caching-session-manager/fastify` plugin. */
export interface FastifySessionOptions {
  /** The session manager whose sessions the plugin attaches (a `SessionManager`). */
  manager: SessionResolver<object>
}

/**
 * Writes the identities' headers (Set-Cookie, the header token) through `reply.header`, so
 * Fastify sends them with the headers other plugins set (`@fastify/cookie`'s cookies
 * included) instead of losing one set to the other.
 */
class ReplyHeaders implements SessionResponse {
  readonly #reply: FastifyReply

  constructor(reply: FastifyReply) {
    this.#reply = reply
  }

  getHeader(name: string): number | string | readonly string[] | undefined {
    return this.#reply.getHeader(name)
  }

  setHeader(name: string, value: number | string | readonly string[]): this {
    const reply = this.#reply
    if (typeof value === 'object') {
      // `reply.header` appends to an existing Set-Cookie; the identities pass the whole new list
      // (built from `getHeader`), so it replaces what is there.
      reply.removeHeader(name)
      reply.header(name, [...value])
    } else {
      reply.header(name, value)
    }
    return this
  }

  removeHeader(name: string): void {
    this.#reply.removeHeader(name)
  }

  get headersSent(): boolean {
    return this.#reply.sent || this.#reply.raw.headersSent
  }
}

/**
 * Build the Fastify plugin of a manager. It decorates `request.session` and loads the session
 * in an `onRequest` hook (a cache hit completes the hook synchronously). It is registered
 * without encapsulation (like `fastify-plugin`), so every route of the app sees
 * `request.session`. A storage outage fails the request with a `SessionError` whose
 * `statusCode` is 503.
 *
 * @example
 * ```ts
 * const app = Fastify()
 * await app.register(createFastifyPlugin(manager))
 * app.get('/', async (request) => {
 *   const views = Number(request.session.get('views') ?? 0) + 1
 *   await request.session.set('views', views)
 *   return { views }
 * })
 * ```
 */
export function createFastifyPlugin<D extends object>(manager: SessionResolver<D>): FastifySessionPlugin {
  function cachingSessionManager(fastify: FastifyInstance, _options: unknown, done: (err?: Error) => void): void {
    if (fastify.hasRequestDecorator('session')) {
      done(new TypeError('request.session is already decorated by another plugin (@fastify/session?); register one session plugin per app'))
      return
    }
    fastify.decorateRequest('session', null, [])
    fastify.addHook('onRequest', function loadSession(request: FastifyRequest, reply: FastifyReply, hookDone: (err?: Error) => void) {
      let resolved: Session<D> | Promise<Session<D>>
      try {
        // `secure: 'auto'` follows `request.protocol`, and so Fastify's `trustProxy`.
        resolved = manager.resolve(new FrameworkRequest(request.raw, request), new ReplyHeaders(reply))
      } catch (err) {
        hookDone(asError(err))
        return
      }
      if (!(resolved instanceof Promise)) {
        request.session = resolved as unknown as AppSession
        hookDone()
        return
      }
      resolved
        .then(
          (session) => {
            request.session = session as unknown as AppSession
            hookDone()
          },
          (err: unknown) => hookDone(asError(err)),
        )
        .catch((err: unknown) => manager.emit('error', asError(err)))
    })
    done()
  }
  return skipOverride(cachingSessionManager as FastifySessionPlugin, 'caching-session-manager')
}

/**
 * The plugin of `caching-session-manager/fastify`, for `register` with options, the way
 * `@fastify/session` is registered.
 *
 * @example
 * ```ts
 * import fastifySession from 'caching-session-manager/fastify'
 * await app.register(fastifySession, { manager })
 * ```
 */
export const fastifySession: FastifySessionPlugin<FastifySessionOptions> = skipOverride(
  function fastifySession(fastify: FastifyInstance, options: FastifySessionOptions, done: (err?: Error) => void): void {
    const manager = (options as Partial<FastifySessionOptions> | undefined)?.manager
    if (typeof manager !== 'object' || manager === null || typeof manager.resolve !== 'function') {
      done(new TypeError('caching-session-manager/fastify option "manager" must be a SessionManager'))
      return
    }
    createFastifyPlugin(manager)(fastify, {}, done)
  } as FastifySessionPlugin<FastifySessionOptions>,
  'caching-session-manager',
)

export default fastifySession

/** What `fastify-plugin` does: no encapsulation, so the decoration and hook apply to the whole app. */
function skipOverride<P extends object>(plugin: P, name: string): P {
  Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: name,
    [Symbol.for('plugin-meta')]: { name, fastify: '5.x' },
  })
  return plugin
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
export type { AppSession, AppSessionData, AppSessionDataType } from './app-session.js'
