/**
 * One server of the cluster bench: node:http + a SessionManager on default options, a
 * MySQLStorage on the table all servers share, a signed CookieIdentity, and a RedisBus when
 * the config names a channel. Argument: a {@link ClusterServerConfig} as JSON.
 *
 * Routes: `/read` answers the session's `n`; `/write?n=V` sets `n` to V and answers V once the
 * storage acknowledged it (the response then carries the re-issued, versioned cookie). Over
 * IPC, `{ type: 'stats' }` is answered with the server's {@link ServerCounters}.
 */
import { createServer, type ServerResponse } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import type { InvalidationBus } from '../../src/bus.js'
import type { RequestWithSession } from '../../src/middleware/node.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Storage } from '../../src/types.js'
import { MySQLStorage } from '../../storages/mysql.js'
import { listen, SECRET } from '../http/servers/common.js'
import { MYSQL_URL, REDIS_URL, type ClusterServerConfig, type ServerCounters, type StatsMessage } from './common.js'
import { UnsharedStorage } from './unshared.js'

interface BenchData {
  n: number
}

const config = JSON.parse(process.argv[2] ?? '{}') as ClusterServerConfig
const mysql = new MySQLStorage({ uri: MYSQL_URL, table: config.table, createTable: false })
const storage: Storage = config.shared ? mysql : new UnsharedStorage(mysql)
let bus: InvalidationBus | undefined
if (config.busChannel !== undefined) {
  const { RedisBus } = await import('../../buses/redis.js')
  const redis = new RedisBus({ url: REDIS_URL, channel: config.busChannel })
  await redis.ready()
  bus = redis
}
const manager = new SessionManager<BenchData>({
  storage,
  identities: [new CookieIdentity({ keys: [SECRET] })],
  ...(bus === undefined ? {} : { bus }),
})
let failures = 0
manager.on('error', () => failures++)
const sessions = manager.middleware()

function fail(res: ServerResponse, err: unknown): void {
  failures++
  res.statusCode = (err as { status?: number }).status ?? 500
  res.end(err instanceof Error ? err.message : String(err))
}

const server = createServer((req: RequestWithSession<BenchData>, res) => {
  sessions(req, res, (err) => {
    res.setHeader('content-type', 'text/plain')
    if (err !== undefined) return fail(res, err)
    const session = req.session!
    const url = req.url ?? ''
    if (url === '/read') {
      res.end(String(session.get('n') ?? 0))
      return
    }
    if (url.startsWith('/write?n=')) {
      const value = Number(url.slice('/write?n='.length))
      session.set('n', value).then(
        () => res.end(String(value)),
        (error: unknown) => fail(res, error),
      )
      return
    }
    res.statusCode = 404
    res.end()
  })
})
// The load generator keeps its connections for the whole run.
server.keepAliveTimeout = 120_000

function counters(): ServerCounters {
  const stats = manager.stats()
  const usage = process.cpuUsage()
  return {
    cpuMicros: usage.user + usage.system,
    loads: stats.loads,
    probeCalls: stats.probeCalls,
    probed: stats.probed,
    storageCalls: stats.storageCalls,
    operations: stats.operations,
    hits: stats.hits,
    misses: stats.misses,
    staleReloads: stats.staleReloads,
    revokedElsewhere: stats.revokedElsewhere,
    conflicts: stats.conflicts,
    busSent: stats.bus?.sent ?? 0,
    busReceived: stats.bus?.received ?? 0,
    failures,
  }
}

process.on('message', (request: { type?: unknown }) => {
  if (request.type !== 'stats' || process.send === undefined) return
  const answer: StatsMessage = { type: 'stats', counters: counters() }
  process.send(answer)
})

listen(server, async () => {
  server.closeAllConnections()
  await manager.close()
  await bus?.close()
})
