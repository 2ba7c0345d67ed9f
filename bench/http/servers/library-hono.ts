/** hono + caching-session-manager/hono on MemoryStorage, served by @hono/node-server. */
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import type { Server } from 'node:http'
import { CookieIdentity } from '../../../identities/cookie.js'
import { honoSession, type SessionEnv } from '../../../src/middleware/hono.js'
import { SessionManager } from '../../../src/session-manager.js'
import { MemoryStorage } from '../../../storages/memory.js'
import { KEY, listen, ROUTES, SECRET } from './common.js'
import { STATS_ROUTE } from './library.js'

let counter = 0
const manager = new SessionManager({ storage: new MemoryStorage(), identities: [new CookieIdentity({ keys: [SECRET] })] })
const app = new Hono<SessionEnv>()
app.use(honoSession({ manager }))
app.get(ROUTES.read, (c) => c.text(String(c.get('session').get(KEY))))
app.get(ROUTES.write, async (c) => {
  const value = ++counter
  await c.get('session').set(KEY, value) // answered once the storage acknowledged it
  return c.text(String(value))
})
app.get(ROUTES.fresh, (c) => c.text(String(c.get('session').get(KEY) ?? 'none')))
app.get(STATS_ROUTE, (c) => c.text(JSON.stringify(manager.stats())))
app.onError((err, c) => c.text(err.message, (err as { status?: 500 | 503 }).status ?? 500))

listen(createAdaptorServer({ fetch: app.fetch }) as Server, () => manager.close())
