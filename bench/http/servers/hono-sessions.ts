/** hono + hono-sessions on its in-memory store, served by @hono/node-server. */
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import { MemoryStore, sessionMiddleware, type Session } from 'hono-sessions'
import type { Server } from 'node:http'
import { KEY, listen, ROUTES, SECRET } from './common.js'

let counter = 0
const app = new Hono<{ Variables: { session: Session<{ n: number }>; session_key_rotation: boolean } }>()
app.use(sessionMiddleware({ store: new MemoryStore(), encryptionKey: SECRET, expireAfterSeconds: 3600, cookieOptions: { path: '/', httpOnly: true } }))
app.get(ROUTES.read, (c) => c.text(String(c.get('session').get(KEY))))
app.get(ROUTES.write, (c) => {
  // hono-sessions stores the session after the handler, before the response goes out.
  c.get('session').set(KEY, ++counter)
  return c.text(String(counter))
})
app.get(ROUTES.fresh, (c) => c.text(String(c.get('session').get(KEY) ?? 'none')))

listen(createAdaptorServer({ fetch: app.fetch }) as Server)
