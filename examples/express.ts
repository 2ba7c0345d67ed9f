/**
 * Express with caching-session-manager: a views counter, login (a new session id) and logout.
 *
 *   npx tsx examples/express.ts          # PORT (default 3000), SESSION_KEYS (comma-separated, newest first), MYSQL_URL (optional)
 *   curl -c jar -b jar http://127.0.0.1:3000/
 *   curl -c jar -b jar -X POST 'http://127.0.0.1:3000/login?user=ada'
 *   curl -c jar -b jar -X POST http://127.0.0.1:3000/logout
 */
import express, { type NextFunction, type Request, type Response } from 'express'
import { createServer } from 'node:http'
import { CookieIdentity, MemoryStorage, SessionManager } from '../src/index.js'
import '../src/middleware/express.js' // caching-session-manager/express: types req.session
import { closeServer, listenOn, openSessions, portFromEnv, shutdownOnSignal, signingKeys, storageFromEnv } from './support.js'

const port = portFromEnv()
const manager = new SessionManager({
  storage: await storageFromEnv(() => new MemoryStorage()), // MYSQL_URL set: a MySQL table; LevelStorage, DynamoDBStorage, ... in production
  identities: [new CookieIdentity({ keys: signingKeys() })],
})

const app = express()
app.use(manager.middleware()) // req.session is loaded before the routes run

app.get('/', async (req, res) => {
  const views = Number(req.session.get('views') ?? 0) + 1
  await req.session.set('views', views) // settles once the storage has it
  res.json({ views, user: req.session.get('user') ?? null })
})

app.post('/login', async (req, res) => {
  const user = String(req.query['user'] ?? 'guest').slice(0, 64)
  await req.session.renew() // a new id on every privilege change
  await req.session.set('user', user)
  res.json({ user })
})

app.post('/logout', async (req, res) => {
  await req.session.destroy() // deleted in storage; the cookie is cleared
  res.json({ loggedOut: true })
})

// A storage outage arrives here with status 503.
app.use((err: { status?: number; code?: string }, _req: Request, res: Response, _next: NextFunction) => {
  res.status(err.status ?? 500).json({ error: err.code ?? 'internal error' })
})

// Open the storage before listening: a storage that cannot be opened stops the example here.
await openSessions(manager)

const server = createServer(app)
const listening = await listenOn(server, port)
if (listening === undefined) process.exit(1)
console.log(`express example listening on http://127.0.0.1:${listening}`)

// Graceful shutdown: stop taking requests, flush pending session writes, then exit.
shutdownOnSignal(
  () => closeServer(server),
  () => manager.close(),
)
