import test from 'ava'
import { existsSync } from 'node:fs'
import { createServer, request, type Server } from 'node:http'
import { connect } from 'node:net'
import { haproxyConfig, haproxyVersion, probeHaproxy, startHaproxy, type Haproxy } from '../helpers/haproxy.js'
import { listen } from '../helpers/http-client.js'
import { serviceTest } from '../helpers/services.js'

const haproxyTest = await serviceTest('HAProxy', probeHaproxy)

/** A tiny backend that answers its own name; `/health` answers 200 or 503 as `healthy` says. */
interface Backend {
  readonly name: string
  readonly port: number
  healthy: boolean
  hits: number
  close(): Promise<void>
}

async function startBackend(name: string): Promise<Backend> {
  const backend = { name, port: 0, healthy: true, hits: 0, close: async () => {} }
  const server: Server = createServer((req, res) => {
    if (req.url === '/health') {
      res.statusCode = backend.healthy ? 200 : 503
      res.end(backend.healthy ? 'ok' : 'unwell')
      return
    }
    backend.hits++
    res.setHeader('content-type', 'text/plain')
    res.end(name)
  })
  const { url, close } = await listen(server)
  backend.port = Number(new URL(url).port)
  backend.close = close
  return backend
}

async function threeBackends(t: { teardown: (fn: () => Promise<void>) => void }): Promise<Backend[]> {
  const backends = await Promise.all(['s1', 's2', 's3'].map(startBackend))
  t.teardown(async () => {
    await Promise.all(backends.map((b) => b.close()))
  })
  return backends
}

/** GET `/` through the balancer on a fresh connection; resolves to the name of the backend that answered. */
function whoAnswers(lb: Haproxy, cookie?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${lb.url}/`, { agent: false, headers: cookie === undefined ? {} : { cookie }, timeout: 3000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}: ${body}`))))
    })
    req.on('timeout', () => req.destroy(new Error('no answer through HAProxy within 3 s')))
    req.on('error', reject)
    req.end()
  })
}

async function tally(lb: Haproxy, count: number, cookie?: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (let i = 0; i < count; i++) {
    const who = await whoAnswers(lb, cookie)
    counts[who] = (counts[who] ?? 0) + 1
  }
  return counts
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

haproxyTest('roundrobin spreads requests evenly; drain and maint take a server out, ready puts it back', async (t) => {
  const backends = await threeBackends(t)
  const lb = await startHaproxy({ backends: backends.map((b) => b.port) })
  t.teardown(() => lb.stop())
  t.deepEqual(lb.servers, ['s1', 's2', 's3'])
  t.log(`HAProxy ${haproxyVersion() ?? '?'} on ${lb.url}`)

  t.deepEqual(await tally(lb, 30), { s1: 10, s2: 10, s3: 10 })

  await lb.setState('s2', 'drain')
  t.deepEqual(await tally(lb, 20), { s1: 10, s3: 10 })
  await lb.setState('s3', 'maint')
  t.deepEqual(await tally(lb, 10), { s1: 10 })
  t.true((await lb.status())['s3']?.status.startsWith('MAINT'))

  await lb.setState('s2', 'ready')
  await lb.setState('s3', 'ready')
  t.deepEqual(await tally(lb, 30), { s1: 10, s2: 10, s3: 10 })
  t.is(
    backends.reduce((sum, b) => sum + b.hits, 0),
    90,
    'every request reached exactly one backend',
  )

  await t.throwsAsync(lb.setState('s9', 'maint'), { instanceOf: TypeError })
  await t.throwsAsync(lb.setState('s1', 'sleep' as never), { instanceOf: TypeError })
})

haproxyTest('sticky by cookie: a value stays on one server; maint moves only its clients, ready brings them back', async (t) => {
  const backends = await threeBackends(t)
  const lb = await startHaproxy({ backends: backends.map((b) => b.port), balance: { stickyCookie: 'sid' } })
  t.teardown(() => lb.stop())

  // 24 clients, each asking 4 times, with other cookies around theirs.
  const clients = Array.from({ length: 24 }, (_, i) => `theme=dark; sid=client-${i}-${'x'.repeat(i)}; lang=en`)
  const home = new Map<string, string>()
  for (const cookie of clients) {
    const seen = await tally(lb, 4, cookie)
    t.is(Object.keys(seen).length, 1, `${cookie} stays on one server`)
    home.set(cookie, Object.keys(seen)[0] ?? '')
  }
  const used = new Set(home.values())
  t.true(used.size >= 2, `the clients are spread (${[...used].join(', ')})`)

  // The server with most clients goes into maintenance.
  const counts = new Map<string, number>()
  for (const server of home.values()) counts.set(server, (counts.get(server) ?? 0) + 1)
  const victim = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 's1'
  await lb.setState(victim, 'maint')
  for (const cookie of clients) {
    const seen = await tally(lb, 3, cookie)
    const servers = Object.keys(seen)
    t.is(servers.length, 1, 'a moved client is sticky on its new server too')
    if (home.get(cookie) === victim) t.not(servers[0], victim, 'clients of the server in maintenance move')
    else t.is(servers[0], home.get(cookie), 'everyone else stays where they were')
  }

  await lb.setState(victim, 'ready')
  for (const cookie of clients) t.is(await whoAnswers(lb, cookie), home.get(cookie) ?? '(none)', 'back home after ready')

  // Without the cookie: round robin.
  t.is(Object.keys(await tally(lb, 6)).length, 3)
})

haproxyTest('health checks take a failing server down and bring it back', async (t) => {
  const backends = await threeBackends(t)
  const lb = await startHaproxy({ backends: backends.map((b) => b.port), healthCheck: { path: '/health', intervalMs: 100, fall: 1, rise: 1 } })
  t.teardown(() => lb.stop())
  await Promise.all(lb.servers.map((s) => lb.waitForStatus(s, 'UP')))

  const [, second] = backends
  if (second === undefined) throw new Error('three backends')
  second.healthy = false
  await lb.waitForStatus('s2', 'DOWN')
  t.deepEqual(await tally(lb, 10), { s1: 5, s3: 5 })
  second.healthy = true
  await lb.waitForStatus('s2', 'UP')
  t.deepEqual(await tally(lb, 9), { s1: 3, s2: 3, s3: 3 })
})

haproxyTest('stop ends HAProxy, frees its port and removes its directory; it is idempotent', async (t) => {
  const backends = await threeBackends(t)
  const lb = await startHaproxy({ backends: [backends[0]?.port ?? 0] })
  t.true(existsSync(lb.dir))
  t.true(await portOpen(lb.port))
  t.regex(await lb.command('show info'), /Name: HAProxy/)
  const first = lb.stop()
  t.is(lb.stop(), first)
  await first
  await lb.stop()
  t.false(existsSync(lb.dir))
  t.false(await portOpen(lb.port))
  t.throws(() => process.kill(lb.pid, 0), { code: 'ESRCH' }, 'the process is gone')
})

test('the config: loopback only, the runtime API at admin level, consistent hashing on the cookie value', (t) => {
  const { text, servers } = haproxyConfig(
    { backends: [4001, { name: 'web-b', port: 4002 }], balance: { stickyCookie: 'sid' }, healthCheck: { intervalMs: 150 } },
    4000,
    '/tmp/x/admin.sock',
  )
  t.deepEqual(servers, ['s1', 'web-b'])
  t.regex(text, /bind 127\.0\.0\.1:4000\n/)
  t.regex(text, /stats socket \/tmp\/x\/admin\.sock mode 600 level admin/)
  t.regex(text, /hash-type consistent\n {2}balance hash req\.cook\(sid\)/)
  t.regex(text, /server web-b 127\.0\.0\.1:4002 check inter 150 /)
  t.notRegex(text, /0\.0\.0\.0|\*:/)
  t.regex(haproxyConfig({ backends: [4001], balance: { stickyCookie: 'sid', upTo: '.' } }, 4000, '/s').text, /balance hash req\.cook\(sid\),field\(1,\.\)\n/)
  t.throws(() => haproxyConfig({ backends: [1], balance: { stickyCookie: 'sid', upTo: ',' } }, 1, '/s'), { instanceOf: TypeError, message: /"balance\.upTo"/ })
  t.throws(() => haproxyConfig({ backends: [] }, 1, '/s'), { instanceOf: TypeError, message: /"backends"/ })
  t.throws(() => haproxyConfig({ backends: [1], balance: { stickyCookie: 'a b' } }, 1, '/s'), { instanceOf: TypeError, message: /"balance"/ })
  t.throws(() => haproxyConfig({ backends: [{ name: 'bad name', port: 1 }] }, 1, '/s'), { instanceOf: TypeError })
  t.throws(() => haproxyConfig({ backends: [1], healthCheck: { path: '/x y' } }, 1, '/s'), { instanceOf: TypeError, message: /healthCheck\.path/ })
})
