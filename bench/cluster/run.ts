/**
 * Cluster section: server processes (bench/cluster/server.ts) on one MySQL table, loaded by
 * many clients from this process (bench/cluster/load.ts), next to one process on the same
 * table in the same round; then the cost of read-your-writes on the write path, over HTTP on
 * MySQL (storage declared shared or not) and in process (reissue.ts).
 */
import { connect } from 'node:net'
import { benchScript, runSection, startChild, type Child } from '../lib/child.js'
import { SILENT, type CellProgress, type SectionPlan } from '../lib/progress.js'
import type { SectionReport } from '../lib/report.js'
import { count, median, ratio } from '../lib/stats.js'
import { table } from '../lib/table.js'
import type { ServerMessage } from '../http/servers/common.js'
import { difference, MYSQL_URL, REDIS_URL, sum, type ClusterServerConfig, type ServerCounters, type StatsMessage } from './common.js'
import { primeClients, runLoad, startClients, type LoadResult, type Spread } from './load.js'
import type { ReissueResult } from './reissue.js'

/** Options of the cluster section. */
export interface ClusterOptions {
  /** Seconds per measured cell. */
  duration: number
  /** Seconds of unmeasured load before each cell. */
  warmup: number
  rounds: number
  /** Requests in flight at once. */
  connections: number
  /** Clients (sessions) per cell. */
  clients: number
  /** Server processes of the cluster rows. */
  servers: number
  /** One request in this many is a write. */
  writeEvery: number
  /** CPU milliseconds per in-process timing. */
  cpuMs: number
}

/** A row of the cluster table: how many servers, with or without a bus, how requests are spread. */
interface Setup {
  readonly key: string
  readonly label: string
  readonly servers: number
  readonly bus: boolean
  readonly shared: boolean
  readonly spread: Spread
  readonly writeEvery: 'mix' | 'all'
}

interface Cell {
  setup: string
  round: number
  load: LoadResult
  counters: ServerCounters
}

const BASELINE = 'one'

function setups(options: ClusterOptions): { cluster: Setup[]; writePath: Setup[] } {
  const n = options.servers
  const cluster: Setup[] = [
    { key: BASELINE, label: '1 process (baseline)', servers: 1, bus: false, shared: true, spread: 'sticky', writeEvery: 'mix' },
    { key: 'rr', label: `${n} processes, no bus, round-robin`, servers: n, bus: false, shared: true, spread: 'round-robin', writeEvery: 'mix' },
    { key: 'sticky', label: `${n} processes, no bus, sticky`, servers: n, bus: false, shared: true, spread: 'sticky', writeEvery: 'mix' },
    { key: 'bus-rr', label: `${n} processes, RedisBus, round-robin`, servers: n, bus: true, shared: true, spread: 'round-robin', writeEvery: 'mix' },
    { key: 'bus-sticky', label: `${n} processes, RedisBus, sticky`, servers: n, bus: true, shared: true, spread: 'sticky', writeEvery: 'mix' },
  ]
  const writePath: Setup[] = [
    { key: 'unshared', label: 'MySQLStorage declared not shared', servers: 1, bus: false, shared: false, spread: 'sticky', writeEvery: 'all' },
    { key: 'shared', label: 'MySQLStorage (shared, the default)', servers: 1, bus: false, shared: true, spread: 'sticky', writeEvery: 'all' },
  ]
  return { cluster, writePath }
}

/** Resolves when a TCP connection to `url`'s host and port opens within 2 s. */
function reachable(url: string, defaultPort: number): Promise<void> {
  const parsed = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || defaultPort) })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer from ${url} within 2 s`))
    }, 2000)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.end()
      resolve()
    })
    socket.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

/** Create the table every server shares (the servers do not create it: three at once would race); returns how to drop it. */
async function createTable(name: string): Promise<() => Promise<void>> {
  const { MySQLStorage } = await import('../../storages/mysql.js')
  const storage = new MySQLStorage({ uri: MYSQL_URL, table: name })
  try {
    await storage.length()
  } finally {
    await storage.close()
  }
  return async () => {
    const { createPool } = await import('mysql2/promise')
    const admin = createPool({ uri: MYSQL_URL, connectionLimit: 1 })
    try {
      await admin.query(`DROP TABLE IF EXISTS \`${name}\``)
    } finally {
      await admin.end()
    }
  }
}

/** Rotate `items` left by `by`. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = items.length === 0 ? 0 : by % items.length
  return [...items.slice(shift), ...items.slice(0, shift)]
}

type Server = Child<ServerMessage>

async function startServers(count: number, config: ClusterServerConfig): Promise<Server[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () =>
      startChild<ServerMessage>(benchScript('cluster/server.ts'), { args: [JSON.stringify(config)], readyTimeoutMs: 30_000 }),
    ),
  )
  const running = started.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []))
  const failed = started.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected')
  if (failed === undefined) return running
  await Promise.all(running.map((server) => server.stop()))
  throw failed.reason
}

/** The server's counters so far, asked over IPC. */
function countersOf(server: Server): Promise<ServerCounters> {
  return new Promise((resolve, reject) => {
    const child = server.process
    const timer = setTimeout(() => {
      child.off('message', onMessage)
      reject(new Error('a cluster server did not report its counters'))
    }, 5000)
    const onMessage = (message: StatsMessage | ServerMessage): void => {
      if (message.type !== 'stats') return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(message.counters)
    }
    child.on('message', onMessage)
    child.send({ type: 'stats' })
  })
}

async function allCounters(servers: readonly Server[]): Promise<ServerCounters> {
  return sum(await Promise.all(servers.map(countersOf)))
}

/**
 * Run `setups` (same servers, bus and storage) once, one after the other on the same fresh
 * server processes: for each, new clients (each a new session), a warm-up, a measured run.
 */
async function measure(
  setups: readonly Setup[],
  round: number,
  options: ClusterOptions,
  table: string,
  channel: string,
  progress: CellProgress,
): Promise<Cell[]> {
  const first = setups[0]!
  const config: ClusterServerConfig = { table, busChannel: first.bus ? `${channel}:${round}:${first.key}` : undefined, shared: first.shared }
  const servers = await startServers(first.servers, config)
  const cells: Cell[] = []
  try {
    const ports = servers.map((server) => server.message.port)
    for (const setup of setups) {
      progress.cell(
        `round ${round + 1}/${options.rounds}: ${setup.writeEvery === 'all' ? 'writes only, ' : ''}${setup.label}`,
        options.warmup + options.duration,
      )
      const writeEvery = setup.writeEvery === 'all' ? 1 : options.writeEvery
      const clients = await startClients(ports, options.clients, writeEvery)
      if (setup.spread === 'round-robin') await primeClients(clients, ports)
      const load = { ports, spread: setup.spread, writeEvery, connections: options.connections }
      await runLoad(clients, { ...load, seconds: options.warmup })
      const before = await allCounters(servers)
      const result = await runLoad(clients, { ...load, seconds: options.duration })
      const counters = difference(await allCounters(servers), before)
      cells.push({ setup: setup.key, round, load: result, counters })
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()))
  }
  return cells
}

/** The in-process write cycle (reissue.ts) times both storage declarations. */
const REISSUE_TIMINGS = 2

/**
 * The cells {@link runCluster} starts: per round, the baseline twice, every other setup and the
 * write path, each a warm-up and a measured run; then a reissue child per round.
 */
export function planCluster(options: ClusterOptions): SectionPlan {
  const { cluster, writePath } = setups(options)
  const perRound = cluster.length + 1 + writePath.length
  return {
    cells: options.rounds * (perRound + 1),
    seconds: options.rounds * (perRound * (options.warmup + options.duration) + (REISSUE_TIMINGS * options.cpuMs) / 1000),
  }
}

/** Run the cluster section, reporting each setup's run and each reissue child to `progress`. */
export async function runCluster(options: ClusterOptions, progress: CellProgress = SILENT): Promise<SectionReport> {
  const { cluster, writePath } = setups(options)
  const notes: string[] = []
  let mysqlReason: string | undefined
  try {
    await reachable(MYSQL_URL, 3306)
  } catch (err) {
    mysqlReason = `MySQL at ${MYSQL_URL} did not answer (${err instanceof Error ? err.message : String(err)})`
  }
  let redisReason: string | undefined
  try {
    await reachable(REDIS_URL, 6379)
  } catch (err) {
    redisReason = `Redis at ${REDIS_URL} did not answer (${err instanceof Error ? err.message : String(err)})`
  }
  const cells: Cell[] = []
  if (mysqlReason === undefined) {
    const name = `csm_bench_cluster_${process.pid}_${Date.now().toString(36)}`
    const channel = `csm-bench:${process.pid}:${Date.now().toString(36)}`
    const dropTable = await createTable(name)
    try {
      const measured = cluster.filter((setup) => !setup.bus || redisReason === undefined)
      const baseline = measured.filter((setup) => setup.key === BASELINE)
      const groups = [measured.filter((setup) => setup.servers > 1 && !setup.bus), measured.filter((setup) => setup.bus)].filter((group) => group.length > 0)
      for (let round = 0; round < options.rounds; round++) {
        // The baseline opens and closes every round; the other setups rotate between, and the
        // two spreads sharing one set of servers swap places every round.
        const inTurn = (group: readonly Setup[]): Setup[] => (round % 2 === 0 ? [...group] : [...group].reverse())
        for (const group of [baseline, ...rotate(groups, round), baseline])
          cells.push(...(await measure(inTurn(group), round, options, name, channel, progress)))
        for (const setup of inTurn(writePath)) cells.push(...(await measure([setup], round, options, name, channel, progress)))
      }
    } finally {
      await dropTable()
    }
  }
  const reissue: ReissueResult[] = []
  for (let round = 0; round < options.rounds; round++) {
    progress.cell(`round ${round + 1}/${options.rounds}: write cycle in process`, (REISSUE_TIMINGS * options.cpuMs) / 1000)
    reissue.push(
      await runSection<ReissueResult>(benchScript('cluster/reissue.ts'), {
        args: [String(options.cpuMs), round % 2 === 0 ? 'unshared-first' : 'shared-first'],
        readyTimeoutMs: 300_000,
      }),
    )
  }
  if (mysqlReason !== undefined) notes.push(`- Not measured over HTTP: ${mysqlReason}.`)
  if (redisReason !== undefined && mysqlReason === undefined) notes.push(`- RedisBus rows not measured: ${redisReason}.`)
  return report(options, cluster, writePath, cells, reissue, notes)
}

/** Storage queries per request: storage reads, version probes and write calls (a batch counting once). */
function queries(cell: Cell): number {
  const c = cell.counters
  return (c.loads + c.probeCalls + c.storageCalls) / Math.max(cell.load.requests, 1)
}

function rate(cell: Cell): number {
  return cell.load.requests / Math.max(cell.load.seconds, 0.001)
}

function perRequest(cell: Cell, value: number): string {
  return (value / Math.max(cell.load.requests, 1)).toFixed(3)
}

function report(
  options: ClusterOptions,
  cluster: readonly Setup[],
  writePath: readonly Setup[],
  cells: readonly Cell[],
  reissue: readonly ReissueResult[],
  notes: string[],
): SectionReport {
  const of = (key: string): Cell[] => cells.filter((cell) => cell.setup === key)
  // Each cell is compared with the mean of its round's two baseline runs.
  const baselineOf = (round: number, pick: (cell: Cell) => number): number => {
    const runs = of(BASELINE).filter((cell) => cell.round === round)
    return runs.reduce((total, cell) => total + pick(cell), 0) / runs.length
  }
  const pickMedian = (mine: readonly Cell[], pick: (cell: Cell) => number): number => median(mine.map(pick))
  const ratioToBaseline = (mine: readonly Cell[], pick: (cell: Cell) => number): number => median(mine.map((cell) => pick(cell) / baselineOf(cell.round, pick)))
  const totals = (mine: readonly Cell[]): { stale: number; errors: number; failures: number; conflicts: number } => ({
    stale: mine.reduce((n, cell) => n + cell.load.staleReads, 0),
    errors: mine.reduce((n, cell) => n + cell.load.errors, 0),
    failures: mine.reduce((n, cell) => n + cell.counters.failures, 0),
    conflicts: mine.reduce((n, cell) => n + cell.counters.conflicts, 0),
  })

  const clusterRows: string[][] = []
  const detailRows: string[][] = []
  for (const setup of cluster) {
    const mine = of(setup.key)
    if (mine.length === 0) continue
    const { stale, errors, failures } = totals(mine)
    const middle = [...mine].sort((a, b) => rate(a) - rate(b))[mine.length >> 1]!
    clusterRows.push([
      setup.label,
      count(pickMedian(mine, rate)),
      ratio(ratioToBaseline(mine, rate)),
      pickMedian(mine, queries).toFixed(3),
      ratio(ratioToBaseline(mine, queries)),
      `${pickMedian(mine, (cell) => cell.load.p50).toFixed(2)} ms`,
      `${pickMedian(mine, (cell) => cell.load.p99).toFixed(2)} ms`,
      `${pickMedian(mine, (cell) => cell.counters.cpuMicros / Math.max(cell.load.requests, 1)).toFixed(1)} µs`,
      count(stale),
      count(errors + failures),
    ])
    const c = middle.counters
    detailRows.push([
      setup.label,
      (options.clients / rate(middle)).toFixed(2),
      perRequest(middle, c.hits),
      perRequest(middle, c.loads),
      perRequest(middle, c.probeCalls),
      perRequest(middle, c.probed),
      perRequest(middle, c.storageCalls),
      perRequest(middle, c.operations),
      count(c.staleReloads),
      count(c.revokedElsewhere),
      count(c.conflicts),
      `${count(c.busSent)} / ${count(c.busReceived)}`,
    ])
  }

  const writeRows: string[][] = []
  const unshared = of('unshared')
  for (const setup of writePath) {
    const mine = of(setup.key)
    if (mine.length === 0) continue
    const { errors, failures } = totals(mine)
    writeRows.push([
      setup.label,
      count(pickMedian(mine, rate)),
      ratio(median(mine.map((cell) => rate(cell) / rate(unshared.find((other) => other.round === cell.round) ?? cell)))),
      `${pickMedian(mine, (cell) => cell.counters.cpuMicros / Math.max(cell.load.requests, 1)).toFixed(1)} µs`,
      `${pickMedian(mine, (cell) => cell.load.p50).toFixed(2)} ms`,
      `${pickMedian(mine, (cell) => cell.load.p99).toFixed(2)} ms`,
      pickMedian(mine, (cell) => cell.load.cookiesSet / Math.max(cell.load.requests, 1)).toFixed(2),
      pickMedian(mine, queries).toFixed(3),
      count(errors + failures),
    ])
  }

  const m = (pick: (r: ReissueResult) => number): number => median(reissue.map(pick))
  const sharedNs = m((r) => r.sharedNs)
  const unsharedNs = m((r) => r.unsharedNs)
  const reissueTable = table(
    ['write cycle, in process', 'per cycle (median)', 'Set-Cookie lines', 'Set-Cookie bytes'],
    [
      [
        'storage declared not shared (cookie never changes)',
        `${(unsharedNs / 1000).toFixed(2)} µs`,
        ratio(m((r) => r.unsharedCookies)),
        count(m((r) => r.unsharedCookieBytes)),
      ],
      [
        'storage declared shared (versioned cookie re-issued)',
        `${(sharedNs / 1000).toFixed(2)} µs`,
        ratio(m((r) => r.sharedCookies)),
        count(m((r) => r.sharedCookieBytes)),
      ],
      ['difference: read-your-writes', `${((sharedNs - unsharedNs) / 1000).toFixed(2)} µs`, '', ''],
    ],
  )

  const mix = `${Math.round(100 - 100 / options.writeEvery)}/${Math.round(100 / options.writeEvery)}`
  const clusterText =
    clusterRows.length === 0
      ? []
      : [
          `Workload: ${count(options.clients)} clients, each with its own session (created before the run, so every request is a session hit), ${count(options.connections)} requests in flight; each client sends one request at a time, ${mix} reads/writes (every ${options.writeEvery}th request of a client is \`/write\`, which sets one key and answers once MySQL acknowledged it), and keeps the cookies each response sets. Round-robin: a client's successive requests go to the next server in turn (no affinity, the worst case for the caches); sticky: each client always talks to the same server.`,
          '',
          table(
            [
              'setup',
              'req/s (median)',
              '÷ 1 process',
              'storage queries / req',
              '÷ 1 process',
              'p50 latency',
              'p99 latency',
              'server CPU / req',
              'stale reads',
              'errors',
            ],
            clusterRows,
          ),
          '',
          '"storage queries / req" is (storage reads + version probe calls + storage write calls, a batch counting once) ÷ requests, from every server\'s `manager.stats()` read over IPC before and after the run. "server CPU / req" adds up the servers\' user + system CPU time. "stale reads": reads that answered a value older than the client\'s last acknowledged write (read-your-writes says 0). "errors": failed requests and failed handlers.',
          '',
          `Per request, in the median run of each setup (\`manager.stats()\` summed over the servers). "s between a client's requests" is clients ÷ req/s: round-robin, each server sees a client ${options.servers}× less often, and a cached copy last validated more than \`trustCacheFor\` ago (1 s without a bus, 10 s with one) is probed before it is served. "unchecked cache hits" are requests served from the cache with no storage call (\`hits\`); "sessions probed" can exceed "probe calls" (one call checks many sessions). Before the round-robin runs every server read every session once, so no row starts from a cold cache.`,
          '',
          table(
            [
              'setup',
              "s between a client's requests",
              'unchecked cache hits',
              'storage reads',
              'probe calls',
              'sessions probed',
              'write calls',
              'write operations',
              'stale reloads',
              'revoked elsewhere',
              'conflicts',
              'bus sent / received',
            ],
            detailRows,
          ),
          '',
        ]
  const cpuOf = (key: string): number => median(of(key).map((cell) => cell.counters.cpuMicros / Math.max(cell.load.requests, 1)))
  const writeText =
    writeRows.length < 2
      ? []
      : [
          `Read-your-writes on the write path: one process on the same MySQL table, every request a write (${count(options.clients)} clients, ${count(options.connections)} in flight, sticky), the storage declared shared (the default: the cookie is re-issued with the new version after every acknowledged write, and cached copies older than \`trustCacheFor\` are checked) or declared not shared (a wrapper that only changes \`capabilities.shared\`). Ratios per round, the two runs back to back, their order flipping every round.`,
          '',
          table(
            [
              'write path',
              'writes/s (median)',
              '÷ not shared',
              'server CPU / req',
              'p50 latency',
              'p99 latency',
              'Set-Cookie responses / req',
              'storage queries / req',
              'errors',
            ],
            writeRows,
          ),
          '',
          `Server CPU per acknowledged write, shared − not shared: ${(cpuOf('shared') - cpuOf('unshared')).toFixed(1)} µs (medians).`,
          '',
        ]
  const body = [
    ...clusterText,
    ...writeText,
    `In process (no HTTP, no database): one write cycle is \`manager.load\` from the client's cookie (a cache hit), \`await session.set()\` on a storage that acknowledges at once, the response ended, and the client keeping the cookies it was sent; mitata, ~${options.cpuMs} ms of CPU per timing, ${reissue.length} rounds in fresh processes, medians. Shared, each cycle signs a new cookie value and the next cycle verifies it (the identity's verified-signature cache cannot help: every value is new).`,
    '',
    reissueTable,
    '',
  ]
  const bodyText = [...body, ...notes].join('\n')
  return {
    title: 'Cluster',
    method: `${options.rounds} rounds × ${options.duration} s per cell after ${options.warmup} s of unmeasured load, loopback only. A server is bench/cluster/server.ts: node:http, a SessionManager on default options, MySQLStorage on one table that all servers share at \`MYSQL_URL\`, a signed CookieIdentity; the RedisBus rows add \`bus: new RedisBus()\` on \`REDIS_URL\` (a channel of their own). Each round starts fresh server processes for each setup; the round-robin and sticky rows of one setup share them, in an order that flips every round, each with sessions of its own. The load generator runs in the bench process (HTTP/1.1 on raw keep-alive sockets). Each round runs one process on the same table first and last, the other setups rotating between; "÷ 1 process" divides by the mean of that round's two baseline runs, then takes the median over rounds. On 2 cores the servers, MariaDB, Redis and the load generator share the CPU, so ${options.servers} processes cannot outrun one: the rows show what coherence costs, not scaling.`,
    body: bodyText,
    targets: [],
  }
}
