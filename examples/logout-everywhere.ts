/**
 * Log out everywhere after a password change, and a page of the user's sessions ("your
 * devices"), with Express. Each session is indexed by its `userId` (the manager's `principal`
 * option), so the manager can list and end every session of a user, on every device and in
 * every process. The demo users are ada (password "lovelace") and alan ("turing").
 *
 *   npx tsx examples/logout-everywhere.ts   # PORT (default 3000), SESSION_KEYS, MYSQL_URL (optional)
 *   curl -c phone  -b phone  -X POST 'http://127.0.0.1:3000/login?user=ada&password=lovelace'
 *   curl -c laptop -b laptop -X POST 'http://127.0.0.1:3000/login?user=ada&password=lovelace'
 *   curl -b laptop http://127.0.0.1:3000/devices                        # two sessions, one of them "this device"
 *   curl -c laptop -b laptop -X POST 'http://127.0.0.1:3000/password?old=lovelace&new=babbage'
 *   curl -b phone http://127.0.0.1:3000/                                 # the phone is logged out
 *   curl -c laptop -b laptop -X POST http://127.0.0.1:3000/logout-everywhere
 */
import express, { type NextFunction, type Request, type Response } from 'express'
import { createHash, scryptSync, timingSafeEqual, randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { CookieIdentity, MemoryStorage, SessionManager } from '../src/index.js'
import '../src/middleware/express.js' // caching-session-manager/express: types req.session
import { closeServer, listenOn, openSessions, portFromEnv, shutdownOnSignal, signingKeys, storageFromEnv } from './support.js'

const port = portFromEnv()
const manager = new SessionManager({
  // MYSQL_URL set: a MySQL table (indexed by user); MemoryStorage otherwise. Both index principals.
  storage: await storageFromEnv(() => new MemoryStorage()),
  identities: [new CookieIdentity({ keys: signingKeys() })],
  principal: 'userId', // the data key that says whose session it is
  maxSessionsPerPrincipal: 10, // an eleventh login ends the oldest
})

/** The demo's user table: a salted scrypt hash per user. */
const users = new Map<string, { salt: Buffer; hash: Buffer }>()
function setPassword(user: string, password: string): void {
  const salt = randomBytes(16)
  users.set(user, { salt, hash: scryptSync(password, salt, 32) })
}
function passwordMatches(user: string, password: string): boolean {
  const entry = users.get(user)
  return entry !== undefined && timingSafeEqual(entry.hash, scryptSync(password, entry.salt, 32))
}
setPassword('ada', 'lovelace')
setPassword('alan', 'turing')

/** A session's id is a credential: the page shows a label derived from it, never the id. */
function label(id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 8)
}

const app = express()
app.use(manager.middleware())

app.get('/', (req, res) => {
  res.json({ user: req.session.get('userId') ?? null })
})

app.post('/login', async (req, res) => {
  const user = String(req.query['user'] ?? '')
  if (!passwordMatches(user, String(req.query['password'] ?? ''))) return void res.status(401).json({ error: 'wrong user or password' })
  await req.session.renew() // a new id on every privilege change
  await req.session.set('userId', user) // indexed under the user by this same write
  res.json({ user })
})

/** The signed-in user, or a 401 answer. */
function signedIn(req: Request, res: Response): string | undefined {
  const user = req.session.get('userId')
  if (typeof user === 'string') return user
  res.status(401).json({ error: 'not signed in' })
  return undefined
}

app.get('/devices', async (req, res) => {
  const user = signedIn(req, res)
  if (user === undefined) return
  const sessions = await manager.sessionsOf(user) // live sessions only, oldest first
  res.json(
    sessions.map((session) => ({
      label: label(session.id),
      thisDevice: session.id === req.session.id,
      createdAt: new Date(session.createdAt).toISOString(),
      expiresAt: new Date(session.expiresAt).toISOString(),
    })),
  )
})

app.post('/password', async (req, res) => {
  const user = signedIn(req, res)
  if (user === undefined) return
  if (!passwordMatches(user, String(req.query['old'] ?? ''))) return void res.status(403).json({ error: 'wrong password' })
  setPassword(user, String(req.query['new'] ?? ''))
  // Every other session of the user ends, here and in every process; this one gets a new id.
  const ended = await manager.revokeSessionsOf(user, { except: req.session.id })
  await req.session.renew()
  res.json({ ended })
})

app.post('/logout-everywhere', async (req, res) => {
  const user = signedIn(req, res)
  if (user === undefined) return
  const ended = await manager.revokeSessionsOf(user, { except: req.session.id })
  await req.session.destroy() // this one too, and its cookie is cleared
  res.json({ ended: ended + 1 })
})

// A storage outage arrives here with status 503.
app.use((err: { status?: number; code?: string }, _req: Request, res: Response, _next: NextFunction) => {
  res.status(err.status ?? 500).json({ error: err.code ?? 'internal error' })
})

await openSessions(manager)

const server = createServer(app)
const listening = await listenOn(server, port)
if (listening === undefined) process.exit(1)
console.log(`logout-everywhere example listening on http://127.0.0.1:${listening}`)

shutdownOnSignal(
  () => closeServer(server),
  () => manager.close(),
)
