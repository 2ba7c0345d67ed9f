/**
 * HTTP section: every server in its own child process on 127.0.0.1, load from autocannon in
 * this process (two cores: one for the server, one for the load). Each round measures every
 * server on every route, in a rotated order, and divides by bare node:http's rate for the same
 * route in the same round; the report gives medians over rounds.
 */
import autocannon from 'autocannon'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { benchScript, startChild, type Child } from '../lib/child.js'
import { SILENT, type CellProgress, type SectionPlan } from '../lib/progress.js'
import { targetLine, type SectionReport, type TargetCheck } from '../lib/report.js'
import { count, median, range, ratio } from '../lib/stats.js'
import { table } from '../lib/table.js'
import { cookieHeader, get } from './client.js'
import { ROUTES, type CpuMessage, type ServerMessage } from './servers/common.js'
import { wrkLoad, type LoadClient, type LoadResult } from './wrk.js'
import { STATS_ROUTE } from './servers/library.js'

/** A server the HTTP section can run. */
export interface ServerSpec {
  readonly name: string
  readonly label: string
  readonly script: string
  /** A repository file the server needs (a storage still being written); skipped without it. */
  readonly requires?: string
}

export const SERVERS: readonly ServerSpec[] = [
  { name: 'bare', label: 'bare node:http', script: 'http/servers/bare.ts' },
  { name: 'csm-memory', label: 'node:http + caching-session-manager (MemoryStorage)', script: 'http/servers/library-memory.ts' },
  { name: 'csm-level', label: 'node:http + caching-session-manager (LevelStorage)', script: 'http/servers/library-level.ts', requires: 'storages/level.ts' },
  { name: 'express-session', label: 'express + express-session (MemoryStore)', script: 'http/servers/express-session.ts' },
  { name: 'csm-sealed', label: 'node:http + caching-session-manager (sealed cookie, no storage)', script: 'http/servers/library-sealed.ts' },
  { name: 'koa-session', label: 'koa + koa-session (cookie store)', script: 'http/servers/koa-session.ts' },
  { name: 'fastify-session', label: 'fastify + @fastify/session (MemoryStore)', script: 'http/servers/fastify-session.ts' },
  { name: 'csm-hono', label: 'hono + caching-session-manager/hono (MemoryStorage)', script: 'http/servers/library-hono.ts' },
  { name: 'hono-sessions', label: 'hono + hono-sessions (MemoryStore)', script: 'http/servers/hono-sessions.ts' },
]

type RouteName = keyof typeof ROUTES
const ROUTE_NAMES: readonly RouteName[] = ['read', 'write', 'fresh']
const ROUTE_LABELS: Record<RouteName, string> = { read: 'session-hit read', write: 'session-hit write', fresh: 'no cookie' }

/** Options of the HTTP section. */
export interface HttpOptions {
  /** Seconds per measured cell. */
  duration: number
  /** Seconds of load per server and route before the first round. */
  warmup: number
  rounds: number
  connections: number
  /** Server names to run (bare is always added). */
  servers?: readonly string[] | undefined
  /** The load generator (see bench/http/wrk.ts). Default autocannon. */
  client?: LoadClient
}

interface RunningServer {
  spec: ServerSpec
  child: Child<ServerMessage>
  port: number
  cookie: string
}

interface Measured {
  server: string
  route: RouteName
  round: number
  rps: number
  p99: number
  failures: number
  /** Server CPU time (user + system) per request, in microseconds. */
  cpuPerRequest: number
}

interface Cell extends Measured {
  /** Requests per second divided by the mean of the bare node:http runs around this one. */
  ratio: number
  /** Bare node:http's CPU time per request (same neighbours) divided by this server's. */
  cpuRatio: number
}

const BARE_COOKIE = `sid=${'a'.repeat(43)}; sid.sig=${'b'.repeat(43)}`
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The servers `options` ask for, split into those that can run and those skipped (a file they need is missing). */
function serversOf(options: HttpOptions): { measured: ServerSpec[]; skipped: ServerSpec[] } {
  const wanted = new Set(['bare', ...(options.servers ?? SERVERS.map((spec) => spec.name))])
  const specs = SERVERS.filter((spec) => wanted.has(spec.name))
  const skipped = specs.filter((spec) => spec.requires !== undefined && !existsSync(REPO_ROOT + spec.requires))
  return { measured: specs.filter((spec) => !skipped.includes(spec)), skipped }
}

/** The cells {@link runHttp} starts: per round, a warm-up per server, then every route with bare between every two others. */
export function planHttp(options: HttpOptions): SectionPlan {
  const servers = serversOf(options).measured.length
  const measuredPerRound = ROUTE_NAMES.length * (2 * servers - 1)
  return { cells: options.rounds * (servers + measuredPerRound), seconds: options.rounds * (servers * options.warmup + measuredPerRound * options.duration) }
}

/** Run the HTTP section, reporting each warm-up and each measured run to `progress`. */
export async function runHttp(options: HttpOptions, progress: CellProgress = SILENT): Promise<SectionReport> {
  const { measured, skipped } = serversOf(options)
  const cells: Cell[] = []
  const stats = new Map<string, Record<string, number>>()
  // Fresh server processes every round: how fast one process happens to be (its heap layout,
  // its JIT, where the scheduler puts it) is part of what the rounds average out.
  for (let round = 0; round < options.rounds; round++) {
    const running = await startAll(measured)
    try {
      for (const server of running) {
        progress.cell(`round ${round + 1}/${options.rounds}, warm-up: ${server.spec.name}`, options.warmup)
        for (const route of ROUTE_NAMES) await load(server, route, options.warmup / ROUTE_NAMES.length, options.connections, options.client)
      }
      cells.push(...(await measureRound(running, round, options, progress)))
      for (const [name, counters] of await libraryStats(running)) {
        const total = stats.get(name) ?? {}
        for (const [key, value] of Object.entries(counters)) total[key] = (total[key] ?? 0) + value
        stats.set(name, total)
      }
    } finally {
      await Promise.all(running.map((server) => server.child.stop()))
    }
  }
  return report(options, measured, cells, skipped, stats)
}

/** Start every server (together: they only compete for the CPU while loading); on any failure stop them all. */
async function startAll(specs: readonly ServerSpec[]): Promise<RunningServer[]> {
  const started = await Promise.allSettled(specs.map(start))
  const running = started.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []))
  const failed = started.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected')
  if (failed === undefined) return running
  await Promise.all(running.map((server) => server.child.stop()))
  throw failed.reason
}

/**
 * One round: every route, bare node:http between every two servers, so each server's ratio
 * uses the bare runs just before and just after it; the order of the others rotates each round.
 */
async function measureRound(running: readonly RunningServer[], round: number, options: HttpOptions, progress: CellProgress): Promise<Cell[]> {
  const bare = running.find((server) => server.spec.name === 'bare')!
  const others = running.filter((server) => server !== bare)
  const cells: Cell[] = []
  const measure = (server: RunningServer, route: RouteName): Promise<Measured> => {
    progress.cell(`round ${round + 1}/${options.rounds}, ${route}: ${server.spec.name}`, options.duration)
    return measureOne(server, route, round, options)
  }
  for (const route of ROUTE_NAMES) {
    let before = await measure(bare, route)
    cells.push({ ...before, ratio: 1, cpuRatio: 1 })
    for (let i = 0; i < others.length; i++) {
      const server = others[(i + round) % others.length]!
      const cell = await measure(server, route)
      const after = await measure(bare, route)
      cells.push(
        { ...cell, ratio: cell.rps / ((before.rps + after.rps) / 2), cpuRatio: (before.cpuPerRequest + after.cpuPerRequest) / 2 / cell.cpuPerRequest },
        { ...after, ratio: 1, cpuRatio: 1 },
      )
      before = after
    }
  }
  return cells
}

async function start(spec: ServerSpec): Promise<RunningServer> {
  const child = await startChild<ServerMessage>(benchScript(spec.script), { readyTimeoutMs: 30_000 })
  const port = child.message.port
  try {
    // The first write starts a session and issues its cookie; a read must then see that write.
    const written = await get(port, ROUTES.write)
    // bare node:http issues no cookie: it gets one shaped like ours, so it parses as many header bytes.
    const cookie = spec.name === 'bare' ? BARE_COOKIE : cookieHeader(written.setCookie)
    if (written.status !== 200 || cookie === '') throw new Error(`${spec.name}: ${ROUTES.write} answered ${written.status} without a cookie`)
    const read = await get(port, ROUTES.read, cookie)
    if (spec.name !== 'bare' && read.body !== written.body) {
      throw new Error(`${spec.name}: ${ROUTES.read} with the session cookie answered "${read.body}", expected "${written.body}"`)
    }
    return { spec, child, port, cookie }
  } catch (err) {
    await child.stop()
    throw err
  }
}

async function measureOne(server: RunningServer, route: RouteName, round: number, options: HttpOptions): Promise<Measured> {
  const cpuBefore = await cpuMicros(server)
  const result = await load(server, route, options.duration, options.connections, options.client)
  const cpu = (await cpuMicros(server)) - cpuBefore
  return {
    server: server.spec.name,
    route,
    round,
    rps: result.rps,
    p99: result.p99,
    failures: result.failures,
    cpuPerRequest: cpu / Math.max(result.requests, 1),
  }
}

/** The server's CPU time so far (asked over IPC; a server answers between requests). */
function cpuMicros(server: RunningServer): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = server.child.process
    const timer = setTimeout(() => {
      child.off('message', onMessage)
      reject(new Error(`${server.spec.name} did not report its CPU time`))
    }, 5000)
    const onMessage = (message: CpuMessage | ServerMessage): void => {
      if (message.type !== 'cpu') return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(message.micros)
    }
    child.on('message', onMessage)
    child.send({ type: 'cpu' })
  })
}

async function load(server: RunningServer, route: RouteName, seconds: number, connections: number, client: LoadClient = 'autocannon'): Promise<LoadResult> {
  const headers: Record<string, string> = route === 'fresh' ? {} : { cookie: server.cookie }
  if (client === 'wrk') return wrkLoad(`http://127.0.0.1:${server.port}${ROUTES[route]}`, seconds, connections, headers)
  const result = await autocannon({
    url: `http://127.0.0.1:${server.port}${ROUTES[route]}`,
    connections,
    duration: seconds,
    // Sample often, so short (smoke) durations stop on time: autocannon checks its timer per sample.
    sampleInt: 100,
    headers,
  })
  return {
    rps: result.requests.total / Math.max(result.duration, 0.01),
    requests: result.requests.total,
    p99: result.latency.p99,
    failures: result.errors + result.timeouts + result.non2xx,
  }
}

async function libraryStats(running: readonly RunningServer[]): Promise<Map<string, Record<string, number>>> {
  const stats = new Map<string, Record<string, number>>()
  for (const server of running) {
    if (!server.spec.name.startsWith('csm-')) continue
    const response = await get(server.port, STATS_ROUTE, server.cookie)
    stats.set(server.spec.name, JSON.parse(response.body) as Record<string, number>)
  }
  return stats
}

function report(
  options: HttpOptions,
  measured: readonly ServerSpec[],
  cells: readonly Cell[],
  skipped: readonly ServerSpec[],
  stats: Map<string, Record<string, number>>,
): SectionReport {
  const cellsOf = (server: string, route: RouteName): Cell[] => cells.filter((cell) => cell.server === server && cell.route === route)
  const ratiosOf = (server: string, route: RouteName): number[] => cellsOf(server, route).map((cell) => cell.ratio)
  const rows: string[][] = []
  for (const route of ROUTE_NAMES) {
    for (const spec of measured) {
      const mine = cellsOf(spec.name, route)
      const ratios = ratiosOf(spec.name, route)
      const [low, high] = range(ratios)
      rows.push([
        `${ROUTE_LABELS[route]} — ${spec.label}`,
        count(median(mine.map((cell) => cell.rps))),
        ratio(median(ratios)),
        `${ratio(low)}–${ratio(high)}`,
        `${median(mine.map((cell) => cell.cpuPerRequest)).toFixed(1)} µs`,
        ratio(median(mine.map((cell) => cell.cpuRatio))),
        `${count(median(mine.map((cell) => cell.p99)))} ms`,
        count(mine.reduce((sum, cell) => sum + cell.failures, 0)),
      ])
    }
  }
  // Each storage the library is measured on carries both targets.
  const targets: TargetCheck[] = []
  for (const [server, storage, wantedRead, wantedWrite] of [
    ['csm-memory', 'MemoryStorage', 0.85, 0.75],
    ['csm-level', 'LevelStorage', 0.85, 0.75],
    ['csm-sealed', 'sealed cookie', 0.8, 0.6],
  ] as const) {
    if (!measured.some((spec) => spec.name === server)) continue
    for (const [route, label, wanted] of [
      ['read', 'read', wantedRead],
      ['write', 'write', wantedWrite],
    ] as const) {
      const value = median(ratiosOf(server, route))
      targets.push({
        name: `HTTP session-hit ${label}, ${storage} / bare node:http`,
        target: `≥ ${wanted.toFixed(2)}`,
        measured: ratio(value),
        met: Number.isFinite(value) ? value >= wanted : undefined,
      })
    }
  }
  const notes: string[] = []
  for (const [name, counters] of stats) {
    notes.push(
      `- ${name}, all rounds: ${count(counters['hits'] ?? 0)} cache hits, ${count(counters['misses'] ?? 0)} misses, ${count(counters['loads'] ?? 0)} storage reads, ${count(counters['created'] ?? 0)} sessions created, ${count(counters['storageCalls'] ?? 0)} storage write calls for ${count(counters['operations'] ?? 0)} operations (${count(counters['coalesced'] ?? 0)} coalesced).`,
    )
  }
  for (const spec of skipped) notes.push(`- ${spec.label}: not run, ${spec.requires} does not exist yet.`)
  const body = [
    table(['route — server', 'req/s (median)', '÷ bare (median)', '÷ bare (min–max)', 'server CPU / req', 'bare CPU ÷ CPU', 'p99 latency', 'errors'], rows),
    '',
    '"server CPU / req" is the server process\'s user + system CPU time per request; "bare CPU ÷ CPU" divides bare node:http\'s by it (same neighbouring runs), the throughput ratio the server would reach if it alone limited the rate. It is less sensitive than req/s to the load generator and to other work on the machine.',
    '',
    ...notes,
    '',
    targetLine(targets),
  ].join('\n')
  return {
    title: 'HTTP',
    method: `${options.rounds} rounds × ${options.duration} s per cell, ${options.connections} connections, ${options.client === 'wrk' ? 'wrk (one thread) as the load generator' : 'autocannon in the parent process'}, each server in its own process under the same tsx loader, started afresh every round and warmed up with ${options.warmup} s of load each. Bare node:http runs between every two other servers (B X B Y B …, the order of the others rotating each round), and each server's ratio divides its rate by the mean of the bare runs just before and just after it; medians are over rounds (and over all bare runs for bare's own rate). The client sends the session cookie it got from the server's first \`/write\`, so reads are cache hits; \`/new\` sends no cookie.`,
    body,
    targets,
  }
}
