// The Koa middleware, written against a structural context so that neither the manager nor the
// package root needs Koa's types; `caching-session-manager/koa` adds the `ctx.session` typing.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Session } from '../session.js'
import { FrameworkRequest } from './framework-request.js'
import type { SessionResolver } from './node.js'

/** What the Koa middleware needs of a context: Koa's `ctx` fits. */
export interface KoaContextLike {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** `'https'` or `'http'`, as Koa sees it (with `app.proxy`, from `X-Forwarded-Proto`). */
  readonly protocol?: string
}

/** The `(ctx, next)` middleware returned by `manager.koa()`. */
export type KoaMiddleware = (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<unknown>

type ProtocolContext = KoaContextLike & { readonly protocol: string }

const SESSION = Symbol('caching-session-manager.koa.session')

interface ContextSlot {
  [SESSION]?: Session<object>
}

function getSession(this: ContextSlot): Session<object> | undefined {
  return this[SESSION]
}

function setSession(this: ContextSlot, value: unknown): void {
  if (value !== null) {
    throw new TypeError('ctx.session can only be set to null (which destroys the session); change its data with ctx.session.set(key, value)')
  }
  // Not awaited, like any unawaited destroy: the cookie is cleared and the id revoked in this
  // process at once; a storage failure reaches the manager's `error` event.
  void this[SESSION]?.destroy()
}

const ACCESSOR: PropertyDescriptor = { get: getSession, set: setSession, configurable: true, enumerable: false }

/**
 * Build the Koa middleware of a manager. `ctx.session` is the {@link Session}, loaded before
 * the next middleware runs (a cache hit adds no promise of its own); `ctx.session = null`
 * destroys it; assigning anything else throws a `TypeError` at the assignment. A storage
 * outage rejects with a `SessionError` whose `status` is 503, which Koa answers as it answers
 * `ctx.throw(503)`.
 *
 * The session id is written on `ctx.res` (node's response), so cookies set with
 * `ctx.cookies.set` survive alongside it. Writes are write-through: nothing is stored for a
 * request whose downstream throws before writing.
 *
 * @example
 * ```ts
 * const app = new Koa()
 * app.use(manager.koa())
 * app.use(async (ctx) => {
 *   const views = Number(ctx.session.get('views') ?? 0) + 1
 *   await ctx.session.set('views', views)
 *   ctx.body = { views }
 * })
 * ```
 */
export function createKoaMiddleware<D extends object>(manager: SessionResolver<D>): KoaMiddleware {
  let prepared: object | undefined
  return function koaSession(ctx, next) {
    // Koa makes each ctx from `app.context`: the accessor is defined there once, not per request.
    const proto = Object.getPrototypeOf(ctx) as object | null
    if (proto !== prepared) prepared = defineAccessor(ctx, proto)
    // With Koa's own ctx, `secure: 'auto'` follows `ctx.protocol` (and so `app.proxy`).
    const req = !('protocol' in ctx) ? ctx.req : new FrameworkRequest(ctx.req, ctx as ProtocolContext)
    const resolved = manager.resolve(req, ctx.res)
    if (resolved instanceof Promise) {
      return resolved.then((session) => {
        ;(ctx as ContextSlot)[SESSION] = session
        return next()
      })
    }
    ;(ctx as ContextSlot)[SESSION] = resolved
    return next()
  }
}

/** Define `session` on Koa's context prototype (or on `ctx` itself if it has no own prototype); returns the object prepared. */
function defineAccessor(ctx: object, proto: object | null): object | undefined {
  const shared = proto !== null && proto !== Object.prototype
  const target = shared ? proto : ctx
  if ('session' in target) {
    const existing = findDescriptor(target, 'session')
    if (existing?.get === getSession) return shared ? proto : undefined
    throw new TypeError('ctx.session is already defined by another middleware (koa-session?); use one session middleware per app')
  }
  Object.defineProperty(target, 'session', ACCESSOR)
  return shared ? proto : undefined
}

function findDescriptor(target: object | null, key: string): PropertyDescriptor | undefined {
  for (let current = target; current !== null; current = Object.getPrototypeOf(current) as object | null) {
    const descriptor = Object.getOwnPropertyDescriptor(current, key)
    if (descriptor !== undefined) return descriptor
  }
  return undefined
}
