/**
 * Fastify with caching-session-manager: a views counter, login (a new session id) and logout.
 *
 *   npx tsx examples/fastify.ts          # PORT (default 3000), SESSION_KEYS (comma-separated, newest first), MYSQL_URL (optional)
 *   curl -c jar -b jar http://127.0.0.1:3000/
 *   curl -c jar -b jar -X POST 'http://127.0.0.1:3000/login?user=ada'
 *   curl -c jar -b jar -X POST http://127.0.0.1:3000/logout
 */
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { CookieIdentity, MemoryStorage, SessionManager } from '../src/index.js'
import fastifySession from '../src/middleware/fastify.js' // caching-session-manager/fastify
import { openSessions, portFromEnv, reportListenFailure, shutdownOnSignal, signingKeys, storageFromEnv } from './support.js'

const port = portFromEnv()
const manager = new SessionManager({
  storage: await storageFromEnv(() => new MemoryStorage()), // MYSQL_URL set: a MySQL table; LevelStorage, DynamoDBStorage, ... in production
  identities: [new CookieIdentity({ keys: signingKeys() })],
})

const app = Fastify()
await app.register(fastifySession, { manager }) // request.session, loaded in onRequest; a storage outage answers 503

app.get('/', async (request) => {
  const views = Number(request.session.get('views') ?? 0) + 1
  await request.session.set('views', views) // settles once the storage has it
  return { views, user: request.session.get('user') ?? null }
})

app.post<{ Querystring: { user?: string } }>('/login', async (request) => {
  const user = String(request.query.user ?? 'guest').slice(0, 64)
  await request.session.renew() // a new id on every privilege change
  await request.session.set('user', user)
  return { user }
})

app.post('/logout', async (request) => {
  await request.session.destroy() // deleted in storage; the cookie is cleared
  return { loggedOut: true }
})

// Open the storage before listening: a storage that cannot be opened stops the example here.
await openSessions(manager)
try {
  await app.listen({ host: '127.0.0.1', port })
} catch (err) {
  reportListenFailure(port, err)
  process.exit(1)
}
console.log(`fastify example listening on http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)

// Graceful shutdown: stop taking requests, flush pending session writes, then exit.
shutdownOnSignal(
  () => app.close(),
  () => manager.close(),
)
