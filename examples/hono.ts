/**
 * Hono on Node (`@hono/node-server`) with caching-session-manager: a views counter, login (a
 * new session id) and logout.
 *
 *   npx tsx examples/hono.ts             # PORT (default 3000), SESSION_KEYS (comma-separated, newest first), MYSQL_URL (optional)
 *   curl -c jar -b jar http://127.0.0.1:3000/
 *   curl -c jar -b jar -X POST 'http://127.0.0.1:3000/login?user=ada'
 *   curl -c jar -b jar -X POST http://127.0.0.1:3000/logout
 */
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import type { Server } from 'node:http'
import { CookieIdentity, MemoryStorage, SessionManager } from '../src/index.js'
import { honoSession, type SessionEnv } from '../src/middleware/hono.js' // caching-session-manager/hono
import { closeServer, listenOn, openSessions, portFromEnv, shutdownOnSignal, signingKeys, storageFromEnv } from './support.js'

const port = portFromEnv()
const manager = new SessionManager({
  storage: await storageFromEnv(() => new MemoryStorage()), // MYSQL_URL set: a MySQL table; LevelStorage, DynamoDBStorage, ... in production
  identities: [new CookieIdentity({ keys: signingKeys() })],
})
manager.on('error', (error) => console.error('session error:', error.message)) // a storage outage is reported here (its cause: the storage's own error)

const app = new Hono<SessionEnv>() // SessionEnv types c.get('session')
app.use(honoSession({ manager })) // the session is loaded before the routes run; a storage outage answers 503 JSON

app.get('/', async (c) => {
  const session = c.get('session')
  const views = Number(session.get('views') ?? 0) + 1
  await session.set('views', views) // settles once the storage has it
  return c.json({ views, user: session.get('user') ?? null })
})

app.post('/login', async (c) => {
  const user = (c.req.query('user') ?? 'guest').slice(0, 64)
  await c.get('session').renew() // a new id on every privilege change
  await c.get('session').set('user', user)
  return c.json({ user })
})

app.post('/logout', async (c) => {
  await c.get('session').destroy() // deleted in storage; the cookie is cleared
  return c.json({ loggedOut: true })
})

// Open the storage before listening: a storage that cannot be opened stops the example here.
await openSessions(manager)

const server = createAdaptorServer({ fetch: app.fetch }) as Server
const listening = await listenOn(server, port)
if (listening === undefined) process.exit(1)
console.log(`hono example listening on http://127.0.0.1:${listening}`)

// Graceful shutdown: stop taking requests, flush pending session writes, then exit.
shutdownOnSignal(
  () => closeServer(server),
  () => manager.close(),
)
