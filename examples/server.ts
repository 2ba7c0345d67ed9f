/**
 * The demo behind `npm start`: the seeds' set/get example on node:http, with sessions in an
 * embedded LevelDB that survives restarts.
 *
 *   GET /                     an HTML page counting your visits (cookie session)
 *   GET /set/:key/:value      stores value under key; answers the value as JSON
 *   GET /get/:key             answers the stored value as JSON (null when there is none)
 *   GET /api/set/:key/:value  the same with a token: send it back in `x-session-token`
 *   GET /api/get/:key
 *
 * Environment: PORT (default 3000; 0 picks a free one), SESSION_DATA_DIR (default
 * ./data/sessions), SESSION_KEYS (comma-separated cookie signing keys, 32+ characters each).
 */
import { once } from 'node:events'
import { mkdirSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { CookieIdentity, HeaderIdentity, SessionManager, isSessionError, type RequestWithSession, type Session } from '../src/index.js'
import { LevelStorage } from '../storages/level.js'

const HOST = '127.0.0.1'
const port = Number(process.env['PORT'] ?? 3000)
const dataDir = resolve(process.env['SESSION_DATA_DIR'] ?? 'data/sessions')
/** Kept constant so cookies stay valid across restarts of the demo; never use it in production. */
const DEVELOPMENT_KEY = 'development-only-key-change-me-in-production-0123456789'

function signingKeys(): string[] {
  const keys = (process.env['SESSION_KEYS'] ?? '')
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '')
  if (keys.length > 0) return keys
  console.warn('SESSION_KEYS is not set: cookies are signed with a development key. Set SESSION_KEYS=key1,key2 (32+ characters each) in production.')
  return [DEVELOPMENT_KEY]
}

mkdirSync(dataDir, { recursive: true })
const storage = new LevelStorage({ location: dataDir })
try {
  await storage.open()
} catch (err) {
  // Typically another server already runs on this data directory (LevelDB is single-process).
  console.error((err as Error).message)
  process.exit(1)
}

const manager = new SessionManager({
  storage,
  identities: [
    // Asked first under /api, so API clients get a token rather than a cookie.
    new HeaderIdentity({ header: 'x-session-token', path: '/api' }),
    new CookieIdentity({ name: 'sid', keys: signingKeys() }),
  ],
})
manager.on('error', (error) => console.error('session error:', error.message))
const sessions = manager.middleware()

let shuttingDown = false
const server = createServer((req, res) => {
  // While shutting down, tell keep-alive clients to go, so their connections do not hold it up.
  if (shuttingDown) res.setHeader('connection', 'close')
  sessions(req, res, (err?: unknown) => {
    if (err !== undefined) {
      sendError(res, err)
      return
    }
    route(req, res, (req as RequestWithSession).session!).catch((error: unknown) => sendError(res, error))
  })
})

async function route(req: IncomingMessage, res: ServerResponse, session: Session): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'only GET is served here\n')
  const path = (req.url ?? '/').split('?')[0]!
  if (path === '/') return homePage(res, session)
  const match = /^(?:\/api)?\/(set|get)\/([^/]+)(?:\/(.+))?$/.exec(path)
  if (match === null) return send(res, 404, 'text/plain', 'not found\n')
  const [, action, rawKey, rawValue] = match
  const key = decodeURIComponent(rawKey!)
  if (action === 'set' && rawValue !== undefined) {
    const value = decodeURIComponent(rawValue)
    await session.set(key, value)
    return send(res, 200, 'application/json', JSON.stringify(value))
  }
  if (action === 'get' && rawValue === undefined) return send(res, 200, 'application/json', JSON.stringify(session.get(key) ?? null))
  return send(res, 404, 'text/plain', 'not found\n')
}

async function homePage(res: ServerResponse, session: Session): Promise<void> {
  const visits = (typeof session.get('visits') === 'number' ? (session.get('visits') as number) : 0) + 1
  await session.set('visits', visits)
  send(
    res,
    200,
    'text/html; charset=utf-8',
    `<!doctype html>
<title>caching-session-manager demo</title>
<h1>You have visited this page ${visits} time${visits === 1 ? '' : 's'}.</h1>
<p>Your session lives in LevelDB at <code>${escapeHtml(dataDir)}</code>: restart the server and the count goes on.</p>
<p>Try <a href="/set/foo/bar">/set/foo/bar</a>, then <a href="/get/foo">/get/foo</a>.</p>
`,
  )
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.statusCode = status
  res.setHeader('content-type', type)
  res.end(body)
}

function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  // Storage trouble is 503 (status set by the library); bad keys or values are the client's fault.
  const badInput =
    err instanceof URIError ||
    isSessionError(err, 'SESSION_INVALID_KEY') ||
    isSessionError(err, 'SESSION_INVALID_VALUE') ||
    isSessionError(err, 'SESSION_TOO_LARGE')
  const status = badInput ? 400 : ((err as { status?: number } | null)?.status ?? 500)
  if (status >= 500) console.error('request failed:', (err as Error).message)
  send(res, status, 'application/json', JSON.stringify({ error: isSessionError(err) ? err.code : 'INTERNAL_ERROR' }))
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
}

async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return
  shuttingDown = true
  console.log(`${signal}: closing (waiting for requests in progress and session writes)`)
  server.close()
  server.closeIdleConnections()
  // A client that keeps its connection busy does not get to hold the shutdown up for long.
  const force = setTimeout(() => server.closeAllConnections(), 5000).unref()
  await once(server, 'close')
  clearTimeout(force)
  await manager.close() // flushes pending writes, then closes the database
  process.exit(0)
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    shutdown(signal).catch((err: unknown) => {
      console.error('shutdown failed:', (err as Error).message)
      process.exit(1)
    })
  })
}

server.listen(port, HOST)
await once(server, 'listening')
console.log(`caching-session-manager demo on http://${HOST}:${(server.address() as AddressInfo).port} (sessions in ${dataDir})`)
