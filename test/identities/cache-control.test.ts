import test, { type ExecutionContext } from 'ava'
import { createServer, type ServerResponse } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import { HeaderIdentity } from '../../identities/header.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import { MemoryStorage } from '../../storages/memory.js'
import { CookieJar, listen, send } from '../helpers/http-client.js'

// A response that issues a session credential must not be kept by a cache: a shared cache that
// stored a token or a Set-Cookie line would hand the session to everyone it serves. Over real
// HTTP, with the README's mixed setup: a header token under /api, a signed cookie elsewhere.

const KEY = 'cache-control-test-signing-key-0123456789'
const TOKEN = 'x-session-token'

/** Routes: `?cc=<value>` sets that Cache-Control first, as an application would. */
async function server(t: ExecutionContext): Promise<string> {
  const manager = new SessionManager({ storage: new MemoryStorage(), identities: [new HeaderIdentity({ path: '/api' }), new CookieIdentity({ keys: [KEY] })] })
  t.teardown(() => manager.close())
  const routes: Record<string, (session: Session) => Promise<unknown>> = {
    write: (session) => session.set('n', Number(session.get('n') ?? 0) + 1),
    read: async () => undefined,
    renew: (session) => session.renew(),
    destroy: (session) => session.destroy(),
  }
  const http = await listen(
    createServer((req, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://localhost')
      const given = url.searchParams.get('cc')
      if (given !== null) res.setHeader('Cache-Control', given)
      const route = routes[url.pathname.split('/').at(-1) ?? '']
      manager
        .load(req, res)
        .then(async (session) => {
          await route?.(session)
          res.end(JSON.stringify({ n: session.get('n') ?? null }))
        })
        .catch(() => {
          res.statusCode = 500
          res.end()
        })
    }),
  )
  t.teardown(http.close)
  return http.url
}

test('header token: issued, renewed and removed with Cache-Control: no-store; a response that issues nothing is left alone', async (t) => {
  const url = await server(t)
  const issued = await send(`${url}/api/write`)
  const token = issued.headers.get(TOKEN)!
  t.truthy(token)
  t.is(issued.headers.get('cache-control'), 'no-store')
  const read = await send(`${url}/api/read`, { headers: { [TOKEN]: token } })
  t.is(read.json()['n'], 1)
  t.is(read.headers.get(TOKEN), null, 'a cache hit issues no token')
  t.is(read.headers.get('cache-control'), null)
  const renewed = await send(`${url}/api/renew`, { headers: { [TOKEN]: token } })
  t.not(renewed.headers.get(TOKEN), token)
  t.is(renewed.headers.get('cache-control'), 'no-store')
  const destroyed = await send(`${url}/api/destroy`, { headers: { [TOKEN]: renewed.headers.get(TOKEN)! } })
  t.is(destroyed.headers.get(TOKEN), '')
  t.is(destroyed.headers.get('cache-control'), 'no-store')
})

test("header token: the application's Cache-Control keeps its directives and gains no-store; public is dropped; no-store is left alone", async (t) => {
  const url = await server(t)
  const cases: ReadonlyArray<[string, string]> = [
    ['public, max-age=600', 'max-age=600, no-store'],
    ['private, max-age=0', 'private, max-age=0, no-store'],
    ['no-store, private', 'no-store, private'],
    ['No-Store', 'No-Store'],
  ]
  for (const [given, expected] of cases) {
    const answer = await send(`${url}/api/write?cc=${encodeURIComponent(given)}`)
    t.truthy(answer.headers.get(TOKEN))
    t.is(answer.headers.get('cache-control'), expected, given)
  }
})

test('cookie: a response that sets or clears the session cookie is private, no-cache="Set-Cookie"; a hit that sets none is left alone', async (t) => {
  const url = await server(t)
  const jar = new CookieJar()
  const issued = await send(`${url}/write`, { jar })
  t.true(issued.setCookies.length > 0)
  t.is(issued.headers.get('cache-control'), 'private, no-cache="Set-Cookie"')
  const read = await send(`${url}/read`, { jar })
  t.is(read.json()['n'], 1)
  t.deepEqual(read.setCookies, [])
  t.is(read.headers.get('cache-control'), null)
  const renewed = await send(`${url}/renew`, { jar })
  t.true(renewed.setCookies.length > 0)
  t.is(renewed.headers.get('cache-control'), 'private, no-cache="Set-Cookie"')
  const destroyed = await send(`${url}/destroy`, { jar })
  t.true(destroyed.setCookies.some((line) => line.startsWith('sid=;')))
  t.is(destroyed.headers.get('cache-control'), 'private, no-cache="Set-Cookie"')
})

test("cookie: the application's Cache-Control keeps its directives; no-store or private already keep the cookie out of shared caches", async (t) => {
  const url = await server(t)
  const cases: ReadonlyArray<[string, string]> = [
    ['public, max-age=600', 'max-age=600, private, no-cache="Set-Cookie"'],
    ['max-age=0', 'max-age=0, private, no-cache="Set-Cookie"'],
    ['private="Set-Cookie"', 'private="Set-Cookie", private, no-cache="Set-Cookie"'],
    ['no-store', 'no-store'],
    ['private, max-age=60', 'private, max-age=60'],
  ]
  for (const [given, expected] of cases) {
    const answer = await send(`${url}/write?cc=${encodeURIComponent(given)}`)
    t.true(answer.setCookies.length > 0)
    t.is(answer.headers.get('cache-control'), expected, given)
  }
})
