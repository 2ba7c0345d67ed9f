/**
 * The demo behind `npm start`: the seeds' set/get example on node:http, with sessions in an
 * embedded LevelDB that survives restarts.
 *
 *   GET /                     an HTML page counting your visits (cookie session); HEAD / counts nothing
 *   GET /set/:key/:value      stores value under key; answers the value as JSON
 *   GET /get/:key             answers the stored value as JSON (null when there is none)
 *   GET /api/set/:key/:value  the same with a token: send it back in `x-session-token`
 *   GET /api/get/:key
 *
 * Keys and values are percent-decoded; a bad encoding (`/set/%ZZ/b`) or a bad key answers 400
 * `{ "error": code, "message": ... }`.
 *
 * Environment: PORT (default 3000; 0 picks a free one), SESSION_DATA_DIR (default
 * ./data/sessions), SESSION_KEYS (comma-separated cookie signing keys, newest first, 32+
 * characters each), MYSQL_URL (sessions in a MySQL table instead of LevelDB).
 */
import { once } from 'node:events'
import { mkdirSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { resolve } from 'node:path'
import { CookieIdentity, HeaderIdentity, SessionManager, isSessionError, type RequestWithSession, type Session } from '../src/index.js'
import { LevelStorage } from '../storages/level.js'
import { listenOn, openSessions, portFromEnv, signingKeys, storageFromEnv } from './support.js'

const HOST = '127.0.0.1'
const port = portFromEnv()
const dataDir = resolve(process.env['SESSION_DATA_DIR'] ?? 'data/sessions')
/** Kept constant so cookies stay valid across restarts of the demo; never use it in production. */
const DEVELOPMENT_KEY = 'development-only-key-change-me-in-production-0123456789'

const storage = await storageFromEnv(() => {
  mkdirSync(dataDir, { recursive: true })
  return new LevelStorage({ location: dataDir })
})
/** Where the sessions live, as the page and the start-up line say. */
const sessionsIn = storage instanceof LevelStorage ? `LevelDB at ${dataDir}` : `the ${storage.name} storage`

const manager = new SessionManager({
  storage,
  identities: [
    // Asked first under /api, so API clients get a token rather than a cookie.
    new HeaderIdentity({ header: 'x-session-token', path: '/api' }),
    new CookieIdentity({ name: 'sid', keys: signingKeys(DEVELOPMENT_KEY) }),
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

/** A request the demo refuses as the client's fault: answered 400 with its code and message. */
class BadRequest extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** `decodeURIComponent`, with a bad encoding as a {@link BadRequest} naming the part. */
function decodePart(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new BadRequest('BAD_ENCODING', `the ${what} ${JSON.stringify(raw)} is not valid percent-encoding (write % as %25)`)
  }
}

async function route(req: IncomingMessage, res: ServerResponse, session: Session): Promise<void> {
  // HEAD is answered like GET but never writes: no visit counted, no session started.
  const head = req.method === 'HEAD'
  if (req.method !== 'GET' && !head) {
    res.setHeader('allow', 'GET, HEAD')
    return send(res, 405, 'text/plain', 'only GET is served here\n')
  }
  const path = (req.url ?? '/').split('?')[0]!
  if (path === '/') return homePage(res, session, !head)
  const match = /^(?:\/api)?\/(set|get)\/([^/]+)(?:\/(.+))?$/.exec(path)
  if (match === null) return send(res, 404, 'text/plain', 'not found\n')
  const [, action, rawKey, rawValue] = match
  const key = decodePart(rawKey!, 'key')
  if (action === 'set' && rawValue !== undefined) {
    const value = decodePart(rawValue, 'value')
    if (head) {
      res.setHeader('allow', 'GET')
      return send(res, 405, 'text/plain', 'set with GET: HEAD never writes\n')
    }
    await session.set(key, value)
    return send(res, 200, 'application/json', JSON.stringify(value))
  }
  if (action === 'get' && rawValue === undefined) return send(res, 200, 'application/json', JSON.stringify(session.get(key) ?? null))
  return send(res, 404, 'text/plain', 'not found\n')
}

async function homePage(res: ServerResponse, session: Session, count: boolean): Promise<void> {
  const visits = (typeof session.get('visits') === 'number' ? (session.get('visits') as number) : 0) + (count ? 1 : 0)
  if (count) await session.set('visits', visits)
  send(
    res,
    200,
    'text/html; charset=utf-8',
    `<!doctype html>
<title>caching-session-manager demo</title>
<h1>You have visited this page ${visits} time${visits === 1 ? '' : 's'}.</h1>
<p>Your session lives in <code>${escapeHtml(sessionsIn)}</code>: restart the server and the count goes on.</p>
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
  // Bad keys or values are the client's fault, and it is told what was wrong.
  if (err instanceof BadRequest) return send(res, 400, 'application/json', JSON.stringify({ error: err.code, message: err.message }))
  if (isSessionError(err, 'SESSION_INVALID_KEY') || isSessionError(err, 'SESSION_INVALID_VALUE') || isSessionError(err, 'SESSION_TOO_LARGE')) {
    return send(res, 400, 'application/json', JSON.stringify({ error: err.code, message: err.message }))
  }
  // Storage trouble is 503 (status set by the library): logged here, and only its code is answered.
  const status = (err as { status?: number } | null)?.status ?? 500
  console.error('request failed:', (err as Error).message)
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

// Before listening: the storage opens (another demo on this data directory holds LevelDB's lock;
// MySQL refuses the connection) or the demo stops with one line saying why, and exit code 1.
await openSessions(manager)

const listening = await listenOn(server, port)
if (listening === undefined) {
  await manager.close()
  process.exit(1)
}
console.log(`caching-session-manager demo on http://${HOST}:${listening} (sessions in ${sessionsIn})`)
