/**
 * Type-level tests, checked by `tsc --noEmit` (tsconfig includes test/); never run. Each
 * `@ts-expect-error` line must fail to compile, and each `Expect<Equal<...>>` must hold, or
 * the typecheck fails.
 *
 * `AppSessionData` is not augmented here: an augmentation is global to the program and would
 * retype every other file's `req.session`. These tests cover the default and the generic
 * `SessionManager<D>` path; the README shows the augmentation.
 */
import express from 'express'
import Fastify from 'fastify'
import Koa from 'koa'
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  SessionManager,
  type AppSession,
  type AppSessionDataType,
  type JsonValue,
  type RequestWithSession,
  type Session,
  type SessionData,
} from '../../src/index.js'
import '../../src/middleware/express.js'
import fastifySession, { createFastifyPlugin } from '../../src/middleware/fastify.js'
import '../../src/middleware/koa.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
/** Compiles only when `A` and `B` are the same type. */
function expectType<T extends true>(): T | void {}
/** `exactly<T>()(value)` compiles only when `value`'s type is exactly `T`. */
function exactly<Expected>() {
  return <Actual>(value: Actual, ..._mismatch: Equal<Actual, Expected> extends true ? [] : [never]): Actual => value
}

interface User {
  id: string
  name: string
}
interface AppData {
  user: User
  views: number
}

declare const typed: SessionManager<AppData>
declare const untyped: SessionManager
declare const req: IncomingMessage
declare const res: ServerResponse

export async function typedData(): Promise<void> {
  const session = await typed.load(req, res)
  expectType<Equal<typeof session, Session<AppData>>>()
  exactly<number | undefined>()(session.get('views'))
  expectType<Equal<ReturnType<typeof session.get<'user'>>, User | undefined>>()
  await session.set('views', 3)
  await session.set('user', { id: '1', name: 'ada' })
  // @ts-expect-error a key the data type does not have
  session.get('nope')
  // @ts-expect-error a value of the wrong type
  await session.set('views', 'many')
  // @ts-expect-error removing a key the data type does not have
  await session.remove('nope')
  expectType<Equal<ReturnType<typeof session.getAll>, Readonly<Partial<AppData>>>>()
}

export function typedNodeMiddleware(): void {
  const sessions = typed.middleware()
  sessions(req, res, () => {
    exactly<Session<AppData> | undefined>()((req as RequestWithSession<AppData>).session)
  })
}

export async function untypedData(): Promise<void> {
  const session = await untyped.load(req, res)
  exactly<JsonValue | undefined>()(session.get('anything'))
  // @ts-expect-error values are JSON
  await session.set('when', () => 1)
  expectType<Equal<AppSessionDataType, SessionData>>()
}

export function expressTypes(): void {
  const app = express()
  app.use(untyped.middleware())
  app.get('/', async (request, response) => {
    exactly<AppSession>()(request.session)
    exactly<JsonValue | undefined>()(request.session.get('x'))
    await request.session.set('x', 1)
    exactly<AppSession>()(response.session)
  })
}

export function koaTypes(): void {
  const app = new Koa()
  app.use(untyped.koa())
  app.use(async (ctx) => {
    exactly<AppSession>()(ctx.session)
    exactly<JsonValue | undefined>()(ctx.session.get('x'))
    ctx.session = null
    // @ts-expect-error only null may be assigned
    ctx.session = { views: 1 }
  })
}

export async function fastifyTypes(): Promise<void> {
  const app = Fastify()
  await app.register(fastifySession, { manager: untyped })
  app.get('/', async (request) => {
    exactly<AppSession>()(request.session)
    return { value: exactly<JsonValue | undefined>()(request.session.get('x')) }
  })
}

export function typedManagersFitEveryFramework(): void {
  // A typed manager's adapters are accepted whatever `AppSessionData` says.
  express().use(typed.middleware())
  new Koa().use(typed.koa())
  void Fastify().register(createFastifyPlugin(typed))
  void Fastify().register(fastifySession, { manager: typed })
}
