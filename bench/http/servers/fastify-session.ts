/** fastify + @fastify/cookie + @fastify/session on its default in-memory store. */
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import Fastify from 'fastify'
import { announce, KEY, ROUTES, SECRET } from './common.js'

declare module 'fastify' {
  interface Session {
    n: number
  }
}

let counter = 0
const app = Fastify({ logger: false })
await app.register(fastifyCookie)
await app.register(fastifySession, { secret: SECRET, saveUninitialized: false, cookie: { secure: false } })
app.get(ROUTES.read, (request, reply) => {
  reply.type('text/plain').send(String(request.session.get(KEY)))
})
app.get(ROUTES.write, (request, reply) => {
  // @fastify/session saves a changed session in its onSend hook, before the response goes out.
  void request.session.set(KEY, ++counter)
  reply.type('text/plain').send(String(counter))
})
app.get(ROUTES.fresh, (request, reply) => {
  reply.type('text/plain').send(String(request.session.get(KEY) ?? 'none'))
})

await app.listen({ host: '127.0.0.1', port: 0 })
announce(app.server)
