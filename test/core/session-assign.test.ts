import test from 'ava'
import express, { type NextFunction, type Request, type Response } from 'express'
import Koa from 'koa'
import { createServer } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import { SealedCookieIdentity } from '../../identities/sealed-cookie.js'
import '../../src/middleware/express.js'
import '../../src/middleware/koa.js'
import type { Session } from '../../src/session.js'
import { SessionManager } from '../../src/session-manager.js'
import { MemoryStorage } from '../../storages/memory.js'
import { fakeRequest, FakeResponse } from '../helpers/fake-http.js'
import { listen, send } from '../helpers/http-client.js'

// `req.session.user = 'x'`, as express-session and koa-session are written, throws a TypeError
// that points to session.set() instead of being silently lost.

const KEY = 'session-assign-test-key-0123456789abcdef'

function managers(): Array<[string, SessionManager]> {
  return [
    ['a stored session', new SessionManager({ storage: new MemoryStorage(), identities: [new CookieIdentity({ keys: [KEY] })] })],
    ['a sealed session', new SessionManager({ identities: [new SealedCookieIdentity({ keys: [KEY], secure: false })] })],
  ]
}

/** Assign in sloppy mode (the Function body is not strict), where a plain ignored write would be silent. */
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- the only way to get a non-strict function body in an ES module
const sloppyAssign = new Function('session', "session.user = 'x'") as (session: unknown) => void

for (const [title, sessions] of managers()) {
  test(`${title}: assigning a new property throws a TypeError naming session.set, in strict and sloppy mode`, async (t) => {
    const session = await sessions.load(fakeRequest(), new FakeResponse())
    const strict = t.throws(() => ((session as unknown as Record<string, unknown>)['user'] = 'x'), { instanceOf: TypeError })
    t.true(strict.message.includes("session.set('user', value)"), strict.message)
    const sloppy = t.throws(() => sloppyAssign(session), { instanceOf: TypeError })
    t.true(sloppy.message.includes("session.set('user', value)"), sloppy.message)
    t.false('user' in session)
    await session.set('user', 'x')
    t.is(session.get('user'), 'x')
    t.true(session.isNew)
    const mark = Symbol('mark')
    ;(session as unknown as Record<symbol, unknown>)[mark] = 1
    t.is((session as unknown as Record<symbol, unknown>)[mark], 1)
  })
}

function outcome(assign: (session: Session) => void, session: Session): { message: string | null } {
  try {
    assign(session)
    return { message: null }
  } catch (err) {
    return { message: err instanceof TypeError ? err.message : 'not a TypeError' }
  }
}

const assignUser = (session: Session): void => {
  ;(session as unknown as Record<string, unknown>)['user'] = 'x'
}

test("express: req.session.user = 'x' throws the TypeError", async (t) => {
  const [, sessions] = managers()[0]!
  const app = express()
  app.use(sessions.middleware())
  app.get('/', (req, res) => res.json(outcome(assignUser, req.session)))
  app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => res.status(500).end())
  const server = await listen(createServer(app))
  t.teardown(server.close)
  const { message } = (await send(server.url)).json<{ message: string | null }>()
  t.true(message?.includes("session.set('user', value)"), String(message))
})

test("koa: ctx.session.user = 'x' throws the TypeError", async (t) => {
  const [, sessions] = managers()[1]!
  const app = new Koa()
  app.use(sessions.koa())
  app.use((ctx) => {
    ctx.body = outcome(assignUser, ctx.session)
  })
  const handle = app.callback()
  const server = await listen(createServer((req, res) => void handle(req, res)))
  t.teardown(server.close)
  const { message } = (await send(server.url)).json<{ message: string | null }>()
  t.true(message?.includes("session.set('user', value)"), String(message))
})
