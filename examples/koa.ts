/**
 * Koa with caching-session-manager: a views counter, login (a new session id) and logout
 * (`ctx.session = null`).
 *
 *   npx tsx examples/koa.ts              # PORT (default 3000), SESSION_KEYS (comma-separated, newest first), MYSQL_URL (optional)
 *   curl -c jar -b jar http://127.0.0.1:3000/
 *   curl -c jar -b jar -X POST 'http://127.0.0.1:3000/login?user=ada'
 *   curl -c jar -b jar -X POST http://127.0.0.1:3000/logout
 */
import Koa from 'koa'
import { createServer } from 'node:http'
import { CookieIdentity, MemoryStorage, SessionManager } from '../src/index.js'
import '../src/middleware/koa.js' // caching-session-manager/koa: types ctx.session
import { closeServer, listenOn, openSessions, portFromEnv, shutdownOnSignal, signingKeys, storageFromEnv } from './support.js'

const port = portFromEnv()
const manager = new SessionManager({
  storage: await storageFromEnv(() => new MemoryStorage()), // MYSQL_URL set: a MySQL table; LevelStorage, DynamoDBStorage, ... in production
  identities: [new CookieIdentity({ keys: signingKeys() })],
})

const app = new Koa()
app.use(manager.koa()) // ctx.session is loaded before the next middleware; a storage outage answers 503

app.use(async (ctx) => {
  const route = `${ctx.method} ${ctx.path}`
  if (route === 'GET /') {
    const views = Number(ctx.session.get('views') ?? 0) + 1
    await ctx.session.set('views', views) // settles once the storage has it
    ctx.body = { views, user: ctx.session.get('user') ?? null }
  } else if (route === 'POST /login') {
    const user = String(ctx.query['user'] ?? 'guest').slice(0, 64)
    await ctx.session.renew() // a new id on every privilege change
    await ctx.session.set('user', user)
    ctx.body = { user }
  } else if (route === 'POST /logout') {
    ctx.session = null // destroys it (koa-session-store's convention); the cookie is cleared
    ctx.body = { loggedOut: true }
  } else {
    ctx.status = 404
  }
})

// Open the storage before listening: a storage that cannot be opened stops the example here.
await openSessions(manager)

const handle = app.callback()
const server = createServer((req, res) => void handle(req, res))
const listening = await listenOn(server, port)
if (listening === undefined) process.exit(1)
console.log(`koa example listening on http://127.0.0.1:${listening}`)

// Graceful shutdown: stop taking requests, flush pending session writes, then exit.
shutdownOnSignal(
  () => closeServer(server),
  () => manager.close(),
)
