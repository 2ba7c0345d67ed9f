import test, { type ExecutionContext } from 'ava'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { CookieIdentity } from '../../identities/cookie.js'
import { HeaderIdentity } from '../../identities/header.js'
import { generateId } from '../../src/ids.js'
import type { RequestWithSession } from '../../src/middleware/node.js'
import { SessionManager } from '../../src/session-manager.js'
import { MemoryStorage } from '../../storages/memory.js'
import { seedSession } from '../helpers/fake-http.js'
import { FaultStorage } from '../helpers/storage-double.js'

// Hostile requests over real HTTP against node:http and manager.middleware(): the answer is 200
// with the right session or a fresh one, 503 during an outage, or node's own 4xx for what its
// parser refuses; never a 500, and the server keeps serving.

interface Running {
  server: Server
  port: number
  storage: FaultStorage
  ids: { ada: string }
}

async function start(t: ExecutionContext, maxHeaderSize?: number): Promise<Running> {
  const storage = new FaultStorage(new MemoryStorage())
  const ada = await seedSession(storage.inner, { user: 'ada' })
  const manager = new SessionManager({
    storage,
    identities: [new HeaderIdentity({ header: 'x-session-token', path: '/api' }), new CookieIdentity({ secure: false })],
  })
  const sessions = manager.middleware()
  const handler: Parameters<typeof createServer>[1] = (req, res) =>
    sessions(req, res, (err?: unknown) => {
      if (err !== undefined) {
        res.statusCode = (err as { status?: number }).status ?? 500
        res.end(String((err as { code?: string }).code))
        return
      }
      const session = (req as RequestWithSession).session!
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ isNew: session.isNew, id: session.id, user: session.get('user') ?? null }))
    })
  const server = maxHeaderSize === undefined ? createServer(handler) : createServer({ maxHeaderSize }, handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await manager.close()
  })
  return { server, port, storage, ids: { ada } }
}

interface RawResponse {
  status: number
  headers: string
  body: string
}

/** Send `head` (request line and headers, CRLF separated, no final blank line) over a raw socket. */
function raw(port: number, head: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1')
      const [headers = '', body = ''] = text.split('\r\n\r\n')
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), headers, body })
    })
    socket.end(`${head}\r\nConnection: close\r\n\r\n`, 'latin1')
  })
}

function get(port: number, headers: string[] = [], target = '/'): Promise<RawResponse> {
  return raw(port, [`GET ${target} HTTP/1.1`, 'Host: 127.0.0.1', ...headers].join('\r\n'))
}

function json(response: RawResponse): { isNew: boolean; id: string; user: string | null } {
  return JSON.parse(response.body) as { isNew: boolean; id: string; user: string | null }
}

const hostileCookies: ReadonlyArray<[string, (id: string) => string]> = [
  ['a malformed id', () => 'Cookie: sid=not-an-id'],
  ['a non-canonical id', (id) => `Cookie: sid=${id.slice(0, -1)}${String.fromCharCode(id.charCodeAt(42) + 1)}`],
  ['percent-encoding', (id) => `Cookie: sid=%${id.charCodeAt(0).toString(16)}${id.slice(1)}`],
  ['xsid instead of sid', (id) => `Cookie: xsid=${id}`],
  ['our name inside another value', (id) => `Cookie: foo=sid=${id}`],
  ['Latin-1 bytes', (id) => `Cookie: sid=${id.slice(0, 40)}\u00e9\u00e9\u00e9`],
  ['a tab inside the value', (id) => `Cookie: sid=${id.slice(0, 20)}\t${id.slice(21)}`],
  ['an empty Cookie header', () => 'Cookie: '],
  ['only semicolons', () => 'Cookie: ;;;;'],
  ['1000 cookies', () => `Cookie: ${Array.from({ length: 1000 }, (_, i) => `c${i}=${i}`).join('; ')}`],
]

for (const [title, header] of hostileCookies) {
  test(`HTTP, cookie with ${title}: 200 and a fresh session`, async (t) => {
    const running = await start(t)
    const response = await get(running.port, [header(running.ids.ada)])
    t.is(response.status, 200)
    t.true(json(response).isNew)
    t.is(running.storage.reads, 0)
  })
}

test('HTTP, two Cookie header lines (bad then good) are joined by node: the good one wins', async (t) => {
  const running = await start(t)
  const response = await get(running.port, ['Cookie: sid=garbage', `Cookie: sid=${running.ids.ada}`])
  t.is(response.status, 200)
  t.is(json(response).user, 'ada')
})

test('HTTP, a repeated token header is joined by node with a comma: no candidate', async (t) => {
  const running = await start(t)
  const id = running.ids.ada
  const response = await get(running.port, [`X-Session-Token: ${id}`, `X-Session-Token: ${id}`], '/api/me')
  t.is(response.status, 200)
  t.true(json(response).isNew)
  t.is(running.storage.reads, 0)
})

test('HTTP, the token header outside its /api scope is ignored; the cookie still works', async (t) => {
  const running = await start(t)
  const response = await get(running.port, [`X-Session-Token: ${generateId()}`, `Cookie: sid=${running.ids.ada}`], '/apix')
  t.is(json(response).user, 'ada')
  t.is(running.storage.reads, 1)
})

test('HTTP, an absolute-form target and an upper-case Host with a port reach the right scope', async (t) => {
  const running = await start(t)
  const response = await raw(running.port, [`GET http://127.0.0.1/api/me HTTP/1.1`, 'Host: 127.0.0.1:1234', `X-Session-Token: ${running.ids.ada}`].join('\r\n'))
  t.is(response.status, 200)
  t.is(json(response).user, 'ada')
})

test("HTTP, a Cookie header over node's 16 KB limit gets node's 431 and the server keeps serving", async (t) => {
  const running = await start(t)
  const big = await get(running.port, [`Cookie: pad=${'x'.repeat(17 * 1024)}; sid=${running.ids.ada}`])
  t.is(big.status, 431)
  const next = await get(running.port, [`Cookie: sid=${running.ids.ada}`])
  t.is(json(next).user, 'ada')
})

test('HTTP, with a 64 KB header limit, a 16 KB Cookie header and 3000 cookies still find the session', async (t) => {
  const running = await start(t, 64 * 1024)
  const padded = await get(running.port, [`Cookie: pad=${'x'.repeat(16 * 1024)}; sid=${running.ids.ada}`])
  t.is(json(padded).user, 'ada')
  const many = await get(running.port, [`Cookie: ${Array.from({ length: 3000 }, (_, i) => `c${i}=${i}`).join('; ')}; sid=${running.ids.ada}`])
  t.is(json(many).user, 'ada')
  const flood = await get(running.port, [`Cookie: ${'sid=x; '.repeat(5000)}sid=${running.ids.ada}`])
  t.is(flood.status, 200)
  t.true(json(flood).isNew, 'a flood of one name is cut short: the real value after it is not looked at')
})

const refusedByParser: ReadonlyArray<[string, string]> = [
  ['a NUL byte in the Cookie header', 'Cookie: sid=a\u0000b'],
  ['a bare CR in the Cookie header', 'Cookie: sid=a\rb'],
  ['a header name with a space', 'Coo kie: sid=x'],
]

for (const [title, header] of refusedByParser) {
  test(`HTTP, ${title}: node answers 400 and the server keeps serving`, async (t) => {
    const running = await start(t)
    const response = await get(running.port, [header])
    t.is(response.status, 400)
    t.is(running.storage.reads, 0)
    const next = await get(running.port, [`Cookie: sid=${running.ids.ada}`])
    t.is(json(next).user, 'ada')
  })
}

test('HTTP, a cache miss during a storage outage is a 503 without a new cookie; after recovery the session is intact', async (t) => {
  const running = await start(t)
  running.storage.down()
  const during = await get(running.port, [`Cookie: sid=${running.ids.ada}`])
  t.is(during.status, 503)
  t.is(during.body, 'SESSION_STORAGE_UNAVAILABLE')
  t.false(/set-cookie/i.test(during.headers), 'no new session is issued over the real one')
  running.storage.up()
  const after = await get(running.port, [`Cookie: sid=${running.ids.ada}`])
  t.is(after.status, 200)
  t.is(json(after).user, 'ada')
})

test('HTTP, requests without a session during an outage still get 200 (nothing is read or written)', async (t) => {
  const running = await start(t)
  running.storage.down()
  const response = await get(running.port, ['Cookie: sid=garbage'])
  t.is(response.status, 200)
  t.true(json(response).isNew)
})
