/**
 * A sticky-session cluster: the primary process runs a small load balancer on PORT that sends
 * every request carrying a session cookie to the same worker (session affinity), and workers keep
 * the sessions they serve in their cache, writing through to one shared MySQL table. When a
 * worker dies, its sessions are taken over by another worker from MySQL, and a new worker is
 * forked.
 *
 *   GET /        counts your visits and says which worker answered
 *   GET /crash   the answering worker exits (to watch a takeover)
 *
 * Run: MYSQL_URL=mysql://root@127.0.0.1:3306/test npx tsx examples/cluster.ts
 * Environment: PORT (default 3000; 0 picks a free one), WORKERS (default 2), MYSQL_URL,
 * SESSION_TABLE (default cluster_sessions), SESSION_KEYS (comma-separated signing keys, newest
 * first).
 */
import cluster from 'node:cluster'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CookieIdentity, SessionManager, isSessionError, type RequestWithSession } from '../src/index.js'
import { MySQLStorage } from '../storages/mysql.js'
import { listenOn, openSessions, portFromEnv, signingKeys } from './support.js'

const HOST = '127.0.0.1'
const COOKIE = 'sid'
/** Never use this key in production: set SESSION_KEYS. */
const DEVELOPMENT_KEY = 'development-only-key-change-me-in-production-0123456789'

if (cluster.isPrimary) await runBalancer()
else await runWorker()

/** The primary: forks the workers and routes each session to one of them. */
async function runBalancer(): Promise<void> {
  const wanted = Number(process.env['WORKERS'] ?? 2)
  /** Each slot's worker port; a replacement worker takes its slot, so sessions come back to it. */
  const slots: Array<number | undefined> = Array.from({ length: wanted }, () => undefined)
  let stopping = false

  const fork = (slot: number): void => {
    const worker = cluster.fork()
    worker.on('message', (message: { port?: number }) => {
      if (typeof message.port === 'number') slots[slot] = message.port
    })
    let listened = false
    worker.on('message', (message: { port?: number }) => {
      if (typeof message.port === 'number') listened = true
    })
    worker.on('exit', () => {
      slots[slot] = undefined
      // A worker that could not even start (its storage cannot be opened) would fail again: stop.
      if (!listened && !stopping) {
        console.error('a worker could not start; stopping the cluster')
        process.exit(1)
      }
      if (!stopping) fork(slot)
    })
  }
  for (let slot = 0; slot < wanted; slot++) fork(slot)

  // Sticky: a session id always goes to its slot's worker, or while that one is down to the
  // next live slot; a client without a session goes to any.
  let next = 0
  const candidates = (req: IncomingMessage): number[] => {
    const sid = /(?:^|;\s*)sid=([^;]+)/.exec(req.headers.cookie ?? '')?.[1]
    const home = sid === undefined ? next++ : createHash('sha256').update(sid).digest().readUInt32BE(0)
    const ports: number[] = []
    for (let i = 0; i < wanted; i++) {
      const port = slots[(home + i) % wanted]
      if (port !== undefined) ports.push(port)
    }
    return ports
  }

  const balance = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body: Buffer[] = []
    for await (const chunk of req) body.push(chunk as Buffer)
    // A worker that just died refuses the connection: try the next one (takeover).
    for (const port of candidates(req)) {
      try {
        await forward(req, Buffer.concat(body), port, res)
        return
      } catch {
        continue
      }
    }
    res.writeHead(503).end('no worker is ready')
  }
  const balancer = createServer((req, res) => {
    // A client that hangs up mid-upload rejects the body's iteration: that one request is lost,
    // never the balancer (an unhandled rejection would end the primary and the whole cluster).
    balance(req, res).catch(() => res.destroy())
  })
  const listening = await listenOn(balancer, portFromEnv())
  if (listening === undefined) {
    stopping = true
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
    process.exitCode = 1
    return
  }
  while (slots.includes(undefined)) await new Promise((resolve) => setTimeout(resolve, 20))
  console.log(`cluster of ${wanted} workers behind http://${HOST}:${listening}`)

  const stop = (): void => {
    stopping = true
    balancer.close()
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0)
    })
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

/** Send one request to a worker; rejects only when the worker could not be reached (nothing was answered yet). */
function forward(req: IncomingMessage, body: Buffer, port: number, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    let answered = false
    // Once the worker's answer has begun, a failure cuts the client's response: it must not be
    // retried on another worker, whose answer would be a second one on the same response.
    const failed = (error: Error): void => {
      if (!answered) return reject(error)
      res.destroy()
      resolve()
    }
    const upstream = request({ host: HOST, port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      answered = true
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
      answer.on('end', resolve)
      answer.on('error', failed)
    })
    upstream.on('error', failed)
    upstream.end(body)
  })
}

/** A worker: sessions in its cache, written through to the shared MySQL table. */
async function runWorker(): Promise<void> {
  const manager = new SessionManager<{ visits: number }>({
    storage: new MySQLStorage({
      uri: process.env['MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test',
      table: process.env['SESSION_TABLE'] ?? 'cluster_sessions',
    }),
    identities: [new CookieIdentity({ name: COOKIE, keys: signingKeys(DEVELOPMENT_KEY) })],
  })
  manager.on('error', (error) => console.error(`worker ${process.pid}: ${error.message}`))
  await openSessions(manager) // MySQL reachable and the table there, or this worker exits 1 saying why
  const sessions = manager.middleware()

  const server = createServer((req: RequestWithSession<{ visits: number }>, res: ServerResponse) => {
    sessions(req, res, async (err) => {
      if (err !== undefined) {
        res.writeHead(isSessionError(err) ? (err.status ?? 500) : 500).end('session storage unavailable')
        return
      }
      if (req.url === '/crash') {
        res.end(`worker ${process.pid} exits`, () => process.exit(1))
        return
      }
      const session = req.session!
      try {
        // Atomic across the workers: run again on the freshest value if another worker wrote meanwhile.
        await session.update('visits', (visits) => (visits ?? 0) + 1)
      } catch (error) {
        res.writeHead(isSessionError(error) ? (error.status ?? 500) : 500).end((error as Error).message)
        return
      }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ worker: process.pid, visits: session.get('visits') }))
    })
  })
  server.listen(0, HOST)
  await once(server, 'listening')
  process.send?.({ port: (server.address() as AddressInfo).port })

  process.once('SIGTERM', () => {
    // Stop taking requests, flush every pending write to MySQL, then leave.
    server.close()
    server.closeAllConnections()
    manager.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
}
