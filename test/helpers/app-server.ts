import type { ExecutionContext } from 'ava'
import { Agent, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isSessionError } from '../../src/errors.js'
import type { RequestWithSession } from '../../src/middleware/node.js'
import type { SessionManager } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import { CookieJar, httpGet } from './session-client.js'

/** One route of an {@link startApp} server: what it answers is sent as JSON with status 200. */
export type Route = (session: Session, query: URLSearchParams) => unknown

/** What a route answered, as a client saw it. */
export interface AppAnswer {
  readonly status: number
  /** The route's JSON, or `{ error: code }` when the middleware failed. */
  readonly body: Record<string, unknown>
  readonly setCookie: readonly string[]
}

/** One browser of an {@link startApp} server: its own cookie jar, kept across requests. */
export class AppClient {
  readonly jar = new CookieJar()
  readonly #agent: Agent
  readonly #port: number

  constructor(agent: Agent, port: number) {
    this.#agent = agent
    this.#port = port
  }

  /** GET `path` with this client's cookies (or `cookie` instead, when given); keeps what the answer sets. */
  async get(path: string, cookie?: string): Promise<AppAnswer> {
    const header = cookie ?? this.jar.header()
    const answer = await httpGet(this.#agent, this.#port, path, header === '' ? {} : { cookie: header })
    this.jar.absorb(answer.setCookie)
    return { status: answer.status, body: JSON.parse(answer.body) as Record<string, unknown>, setCookie: answer.setCookie ?? [] }
  }
}

/** A running server: a client factory and its port. */
export interface App {
  readonly port: number
  client(): AppClient
}

/**
 * A node:http server on 127.0.0.1 (port 0) running `manager.middleware()` and `routes` by path
 * (`/login?x=1` runs `routes['/login']`); an unknown path answers 404. Closed, with the
 * manager, at the end of the test.
 */
export async function startApp(t: ExecutionContext, manager: SessionManager, routes: Record<string, Route>): Promise<App> {
  const sessions = manager.middleware()
  const server = createServer((req, res) => {
    sessions(req, res, (err?: unknown) => {
      const reply = (status: number, body: unknown): void => {
        if (res.headersSent) return
        res.statusCode = status
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(body))
      }
      if (err !== undefined) {
        reply((err as { status?: number }).status ?? 500, { error: isSessionError(err) ? err.code : String(err) })
        return
      }
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      const route = routes[url.pathname]
      if (route === undefined) return reply(404, { error: 'no route' })
      Promise.resolve()
        .then(() => route((req as RequestWithSession).session!, url.searchParams))
        .then(
          (body) => reply(200, body ?? {}),
          (error: unknown) => reply(500, { error: isSessionError(error) ? error.code : String(error) }),
        )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const agent = new Agent({ keepAlive: false })
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    agent.destroy()
    await manager.close()
  })
  return { port, client: () => new AppClient(agent, port) }
}

/** `'ok'` when `promise` resolves, else the `SESSION_*` code (or message) it rejected with. */
export function outcome(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'ok',
    (err: unknown) => (isSessionError(err) ? err.code : String(err)),
  )
}

/** A promise and the function that resolves it. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((done) => (resolve = done))
  return { promise, resolve }
}
