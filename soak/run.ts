/**
 * The soak: `npm run soak` (SOAK_SECONDS=120 by default).
 *
 * A server child process (test/process/fixtures/session-server.ts) with MySQLStorage on a fresh MariaDB
 * table and a cache smaller than the number of sessions takes a fixed request rate on 127.0.0.1:
 * reads, writes, new sessions, renews, destroys and hostile requests, from visitors that each
 * keep their own cookies. Every acknowledged write goes into a ledger; at the end the server is
 * shut down gracefully and a new connection checks the ledger against the table. Server heap and
 * RSS are sampled (after a GC) all along. Exits 1 when anything acknowledged is missing, a
 * destroyed session came back, any request failed, or the heap kept growing.
 *
 * Environment: SOAK_SECONDS (120), SOAK_RATE requests per second (300), SOAK_VISITORS (2000),
 * SOAK_CACHE_LIMIT (500), MYSQL_URL (mysql://root@127.0.0.1:3306/test), SOAK_KEEP_TABLE=1 to keep
 * the table afterwards.
 */
import { randomBytes } from 'node:crypto'
import { Agent } from 'node:http'
import { createPool } from 'mysql2/promise'
import { MySQLStorage } from '../storages/mysql.js'
import { startFixtureServer } from '../test/helpers/child-server.js'
import { httpGet } from '../test/helpers/session-client.js'
import { Workload } from '../test/helpers/workload.js'
import { runAtFixedRate } from './fixed-rate.js'
import { growth, type MemorySample } from './trend.js'

function setting(name: string, fallback: number): number {
  const raw = process.env[name]
  const value = raw === undefined ? fallback : Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number, got ${raw}`)
  return value
}

const seconds = setting('SOAK_SECONDS', 120)
const rate = setting('SOAK_RATE', 300)
const visitors = setting('SOAK_VISITORS', 2000)
const cacheLimit = setting('SOAK_CACHE_LIMIT', 500)
const mysqlUrl = process.env['MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test'
const table = `sessions_soak_${randomBytes(4).toString('hex')}`
// The cache fills during the first part of the run; growth is judged on the rest.
const warmupSeconds = Math.min(30, seconds / 4)

console.log(`soak: ${seconds} s at ${rate} requests/s, ${visitors} visitors, cache of ${cacheLimit} sessions, MariaDB table ${table}`)

const server = await startFixtureServer({ STORAGE: 'mysql', MYSQL_URI: mysqlUrl, MYSQL_TABLE: table, CACHE_LIMIT: String(cacheLimit) }, ['--expose-gc'])
const agent = new Agent({ keepAlive: true, maxSockets: 256 })
const statsAgent = new Agent({ keepAlive: true, maxSockets: 1 })
const workload = new Workload(agent, server.port, visitors)

interface ServerStats {
  stats: Record<string, number>
  memory: NodeJS.MemoryUsage
  unexpected: string[]
}

async function serverStats(gc: boolean): Promise<ServerStats> {
  const response = await httpGet(statsAgent, server.port, `/stats${gc ? '?gc=1' : ''}`)
  return JSON.parse(response.body) as ServerStats
}

const samples: MemorySample[] = []
const begin = performance.now()
async function sample(): Promise<void> {
  const { memory, stats } = await serverStats(true)
  samples.push({ at: (performance.now() - begin) / 1000, heapUsed: memory.heapUsed, rss: memory.rss, cached: stats['cached'] ?? 0 })
}

await sample()
const sampling = setInterval(() => void sample().catch(() => undefined), Math.max(2, seconds / 30) * 1000)
const progress = setInterval(() => {
  const c = workload.counters
  console.log(
    `  ${Math.round((performance.now() - begin) / 1000)} s: ${c.requests} requests, ${c.acknowledgedWrites} writes acknowledged, ${Object.values(c.errors).reduce((a, b) => a + b, 0)} errors`,
  )
}, 10_000)
const load = await runAtFixedRate(rate, seconds * 1000, () => workload.step())
clearInterval(sampling)
clearInterval(progress)
await sample()
const final = await serverStats(false)

server.child.kill('SIGTERM')
const closed = await server.next('closed')
const exit = await server.exited
agent.destroy()
statsAgent.destroy()

const storage = new MySQLStorage({ uri: mysqlUrl, table })
const report = await workload.ledger.verify(storage)
const rows = await storage.length()
await storage.close()
if (process.env['SOAK_KEEP_TABLE'] !== '1') {
  const admin = createPool({ uri: mysqlUrl, connectionLimit: 1 })
  await admin.query(`DROP TABLE IF EXISTS \`${table}\``)
  await admin.end()
}

const heap = growth(samples, (s) => s.heapUsed, warmupSeconds)
const rss = growth(samples, (s) => s.rss, warmupSeconds)
// Steady heap may wobble; a leak shows as growth well beyond that over the steady part of the run.
const heapGrows = heap.projectedMb > Math.max(5, heap.firstMb * 0.15)
const c = workload.counters
const errorCount = Object.values(c.errors).reduce((a, b) => a + b, 0)
const unexpected = [...final.unexpected, ...(closed.unexpected ?? [])]
const summary = {
  command: `SOAK_SECONDS=${seconds} SOAK_RATE=${rate} SOAK_VISITORS=${visitors} SOAK_CACHE_LIMIT=${cacheLimit} npm run soak`,
  seconds,
  rate,
  visitors,
  cacheLimit,
  load,
  achievedRate: Math.round(c.requests / seconds),
  requests: c.requests,
  ok: c.ok,
  acknowledgedWrites: c.acknowledgedWrites,
  renews: c.renews,
  destroys: c.destroys,
  hostile: c.hostile,
  errors: c.errors,
  serverUnexpectedErrors: unexpected.length,
  server: { ...final.stats, exitCode: exit.code, pendingAtExit: closed.stats?.['pendingWrites'] },
  storedSessions: rows,
  ledger: {
    sessions: report.sessions,
    keys: report.keys,
    destroyedChecked: report.destroyed,
    missing: report.missing.length,
    resurrected: report.resurrected.length,
    inDoubt: report.inDoubt,
  },
  memory: {
    start: { heapMb: mb(samples[0]!.heapUsed), rssMb: mb(samples[0]!.rss) },
    end: { heapMb: mb(samples.at(-1)!.heapUsed), rssMb: mb(samples.at(-1)!.rss) },
    steadyHeap: heap,
    steadyRss: rss,
    samples: samples.length,
    growthTrend: heapGrows,
  },
}

console.log(`
requests            ${c.requests} (${summary.achievedRate}/s; ${load.declined} not started: every visitor busy)
ok                  ${c.ok}
errors              ${errorCount === 0 ? 'none' : JSON.stringify(c.errors)}
acknowledged writes ${c.acknowledgedWrites}, renews ${c.renews}, destroys ${c.destroys}, hostile requests ${c.hostile}
ledger check        ${report.keys} keys of ${report.sessions} sessions checked in MariaDB: ${report.missing.length} missing; ${report.destroyed} destroyed or renewed-away ids checked: ${report.resurrected.length} came back
server              cache ${final.stats['cached']} of ${cacheLimit}, ${final.stats['hits']} hits, ${final.stats['misses']} misses, ${final.stats['loads']} storage reads, ${final.stats['evicted']} evictions, ${final.stats['storageCalls']} storage calls for ${final.stats['operations']} operations; exit code ${exit.code}
heap (after GC)     ${summary.memory.start.heapMb} MB at start, ${summary.memory.end.heapMb} MB at end; after warm-up ${heap.firstMb} → ${heap.lastMb} MB, slope ${heap.mbPerMinute} MB/min${heapGrows ? ' — GROWING' : ' (no growth trend)'}
rss                 ${summary.memory.start.rssMb} MB at start, ${summary.memory.end.rssMb} MB at end; slope ${rss.mbPerMinute} MB/min
`)
console.log(`SOAK_RESULT ${JSON.stringify(summary)}`)

const failed = report.missing.length > 0 || report.resurrected.length > 0 || errorCount > 0 || unexpected.length > 0 || exit.code !== 0 || heapGrows
if (report.missing.length > 0) console.error('missing acknowledged writes (first 10):', report.missing.slice(0, 10))
process.exit(failed ? 1 : 0)

function mb(bytes: number): number {
  return Math.round((bytes / 1024 / 1024) * 10) / 10
}
