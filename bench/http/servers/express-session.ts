/** express + express-session on its MemoryStore, configured as its README recommends. */
import express, { type Request } from 'express'
import session from 'express-session'
import { createServer } from 'node:http'
import { KEY, listen, ROUTES, SECRET } from './common.js'

interface BenchData {
  n?: number
}

/**
 * The request's express-session session. Read through a cast because this repository's own
 * Express adapter augments `Request.session` with its type, and the two augmentations meet in
 * one TypeScript program.
 */
function sessionOf(req: Request): session.Session & BenchData {
  return (req as unknown as { session: session.Session & BenchData }).session
}

let counter = 0
const app = express()
app.set('etag', false)
app.set('x-powered-by', false)
app.use(session({ secret: SECRET, resave: false, saveUninitialized: false, store: new session.MemoryStore() }))
app.get(ROUTES.read, (req, res) => {
  res.type('text').send(String(sessionOf(req)[KEY]))
})
app.get(ROUTES.write, (req, res) => {
  // express-session saves a modified session before the response ends.
  sessionOf(req)[KEY] = ++counter
  res.type('text').send(String(counter))
})
app.get(ROUTES.fresh, (req, res) => {
  res.type('text').send(String(sessionOf(req)[KEY] ?? 'none'))
})

listen(createServer(app))
