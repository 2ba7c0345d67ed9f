/**
 * koa-session-store's view counter with the session kept in the cookie itself: sealed with
 * AES-256-GCM (the client can neither read nor change it), no storage on the server. Any
 * process started with the same SESSION_KEYS reads the same cookies.
 *
 *   npx tsx examples/sealed-cookie.ts    # PORT (default 3000), SESSION_KEYS (comma-separated, newest first)
 *   curl -c jar -b jar http://127.0.0.1:3000/
 *   curl -c jar -b jar -X POST http://127.0.0.1:3000/logout
 */
import Koa from 'koa'
import { createServer } from 'node:http'
import { SealedCookieIdentity } from '../identities/sealed-cookie.js'
import { SessionManager } from '../src/index.js'
import '../src/middleware/koa.js' // caching-session-manager/koa: types ctx.session
import { closeServer, listenOn, openSessions, portFromEnv, shutdownOnSignal, signingKeys } from './support.js'

const port = portFromEnv()
const manager = new SessionManager({
  // Only sealed identities: no storage, nothing written server-side. The newest key seals, every key opens.
  identities: [new SealedCookieIdentity({ name: 'session', keys: signingKeys() })],
  // A sealed session cannot be revoked before its deadline: keep that deadline short.
  maxAge: 60 * 60,
})

const app = new Koa()
app.use(manager.koa())

app.use(async (ctx) => {
  const route = `${ctx.method} ${ctx.path}`
  if (route === 'GET /') {
    const views = Number(ctx.session.get('views') ?? 0) + 1
    await ctx.session.set('views', views) // settles once the new cookie is on the response
    ctx.body = `${views} views`
  } else if (route === 'POST /logout') {
    ctx.session = null // clears the cookie; a copy of it kept elsewhere still opens until its deadline
    ctx.body = 'logged out'
  } else {
    ctx.status = 404
  }
})

// Nothing to open without a storage, but the call is the same for every manager: ready before listening.
await openSessions(manager)

const handle = app.callback()
const server = createServer((req, res) => void handle(req, res))
const listening = await listenOn(server, port)
if (listening === undefined) process.exit(1)
console.log(`sealed-cookie example listening on http://127.0.0.1:${listening}`)

shutdownOnSignal(
  () => closeServer(server),
  () => manager.close(),
)
