/** koa + koa-session with its defaults: signed cookie, session data carried in the cookie. */
import Koa, { type Context } from 'koa'
import session from 'koa-session'
import { createServer } from 'node:http'
import { KEY, listen, ROUTES, SECRET } from './common.js'

/**
 * koa-session's session of a request. Read through a cast because this repository's own Koa
 * adapter augments `ctx.session` with its type, and the two augmentations meet in one
 * TypeScript program.
 */
function sessionOf(ctx: Context): Record<string, unknown> | null {
  return (ctx as unknown as { session: Record<string, unknown> | null }).session
}

let counter = 0
const app = new Koa()
app.keys = [SECRET]
app.use(session({ signed: true }, app))
app.use((ctx) => {
  ctx.type = 'text/plain'
  const store = sessionOf(ctx)
  switch (ctx.path) {
    case ROUTES.read:
      ctx.body = String(store?.[KEY])
      return
    case ROUTES.write:
      if (store !== null) store[KEY] = ++counter
      ctx.body = String(counter)
      return
    case ROUTES.fresh:
      ctx.body = String(store?.[KEY] ?? 'none')
      return
    default:
      ctx.status = 404
  }
})

const handle = app.callback()
listen(createServer((req, res) => void handle(req, res)))
