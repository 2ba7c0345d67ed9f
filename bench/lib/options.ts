/** Command-line options of `bench/run.ts`, with the full and quick presets. */
import { parseArgs } from 'node:util'
import { BACKENDS, type BackendName } from '../storage/backends.js'
import { defaultClient, type LoadClient } from '../http/wrk.js'

/** Sections, in the order they run. */
export const SECTIONS = ['http', 'micro', 'memory', 'storage', 'principals', 'cluster'] as const
export type SectionName = (typeof SECTIONS)[number]

/** Everything a run needs. */
export interface BenchOptions {
  quick: boolean
  /** Sections to run; none with `--redraw`, which only rebuilds the README's targets table and charts from its blocks. */
  sections: SectionName[]
  /** Where the results go: a markdown file (its results block is replaced), or `-` for stdout only. */
  out: string
  http: { duration: number; warmup: number; rounds: number; connections: number; servers: string[] | undefined; client: LoadClient }
  micro: { rounds: number; cpuMs: number; cacheSizes: number[]; counterCookies: number; counterRepeats: number }
  memory: { sessions: number; rounds: number }
  storage: { storages: BackendName[]; duration: number; rounds: number; concurrency: number[] }
  principals: { storages: BackendName[]; sessions: number; duration: number; rounds: number; concurrency: number }
  cluster: { duration: number; warmup: number; rounds: number; connections: number; clients: number; servers: number; writeEvery: number; cpuMs: number }
}

const USAGE = `usage: tsx bench/run.ts [--quick] [--only http,micro,memory,storage,principals,cluster] [--redraw] [--out FILE|-]
  [--duration S] [--warmup S] [--rounds N] [--connections N] [--servers a,b] [--client wrk|autocannon]
  [--cpu-ms N] [--cache-sizes a,b,c] [--sessions N] [--storages a,b] [--storage-duration S] [--concurrency a,b]
  [--principal-sessions N]
  [--clients N] [--cluster-servers N] [--write-every N]`

/** Parse `argv` (without node and the script). Throws a `TypeError` naming the option on bad input. */
export function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      redraw: { type: 'boolean', default: false },
      out: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      connections: { type: 'string' },
      servers: { type: 'string' },
      client: { type: 'string' },
      'cpu-ms': { type: 'string' },
      'cache-sizes': { type: 'string' },
      sessions: { type: 'string' },
      storages: { type: 'string' },
      'storage-duration': { type: 'string' },
      concurrency: { type: 'string' },
      'principal-sessions': { type: 'string' },
      clients: { type: 'string' },
      'cluster-servers': { type: 'string' },
      'write-every': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) throw new TypeError(USAGE)
  const quick = values.quick
  const rounds = positive(values.rounds, 'rounds', 3, true)
  if (values.redraw && values.only !== undefined) throw new TypeError('option --redraw runs no section: it cannot go with --only')
  const sections = (values.redraw ? [] : list(values.only, 'only', [...SECTIONS])).map((name) => {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new TypeError(`option --only: unknown section "${name}" (one of ${SECTIONS.join(', ')})`)
    return name as SectionName
  })
  const storages = list(values.storages, 'storages', ['level', 'mysql', 'dynamodb', 'memory']).map((name) => {
    if (!(BACKENDS as readonly string[]).includes(name)) throw new TypeError(`option --storages: unknown storage "${name}" (one of ${BACKENDS.join(', ')})`)
    return name as BackendName
  })
  const duration = positive(values.duration, 'duration', quick ? 1 : 5)
  const warmup = positive(values.warmup, 'warmup', quick ? 1 : 3)
  const connections = positive(values.connections, 'connections', 32, true)
  const cpuMs = positive(values['cpu-ms'], 'cpu-ms', quick ? 200 : 1000)
  const clients = positive(values.clients, 'clients', quick ? 200 : 1000, true)
  if (clients < connections)
    throw new TypeError(`option --clients (${clients}) must be at least --connections (${connections}): a client sends one request at a time`)
  const storage = {
    storages,
    duration: positive(values['storage-duration'], 'storage-duration', quick ? 1 : 3),
    rounds,
    concurrency: list(values.concurrency, 'concurrency', ['1', '64', '1024']).map((level) => positive(level, 'concurrency', 0, true)),
  }
  return {
    quick,
    sections,
    out: values.out ?? new URL('../README.md', import.meta.url).pathname,
    http: {
      duration,
      warmup,
      rounds,
      connections,
      servers: values.servers === undefined ? undefined : list(values.servers, 'servers', []),
      client: clientOption(values.client),
    },
    micro: {
      rounds,
      cpuMs,
      cacheSizes: list(values['cache-sizes'], 'cache-sizes', ['10000', '100000', '1000000']).map((size) => positive(size, 'cache-sizes', 0, true)),
      counterCookies: 100,
      counterRepeats: quick ? 100 : 1000,
    },
    memory: { sessions: positive(values.sessions, 'sessions', 100_000, true), rounds: quick ? 1 : rounds },
    storage,
    principals: {
      storages,
      sessions: positive(values['principal-sessions'], 'principal-sessions', quick ? 2_000 : 100_000, true),
      duration: storage.duration,
      rounds,
      concurrency: Math.max(...storage.concurrency),
    },
    cluster: {
      duration,
      warmup,
      rounds,
      connections,
      clients,
      servers: positive(values['cluster-servers'], 'cluster-servers', 3, true),
      writeEvery: positive(values['write-every'], 'write-every', 10, true),
      cpuMs,
    },
  }
}

function positive(text: string | undefined, name: string, fallback: number, integer = false): number {
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new TypeError(`option --${name} must be a positive ${integer ? 'integer' : 'number'}, got "${text}"`)
  }
  return value
}

function list(text: string | undefined, name: string, fallback: string[]): string[] {
  if (text === undefined) return fallback
  const items = text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
  if (items.length === 0) throw new TypeError(`option --${name} must be a comma-separated list`)
  return items
}

/** The HTTP section's load generator: `--client`, or wrk when it is installed, else autocannon. */
function clientOption(value: string | undefined): LoadClient {
  if (value === undefined) return defaultClient()
  if (value !== 'wrk' && value !== 'autocannon') throw new TypeError(`option --client: "${value}" is not one of wrk, autocannon`)
  return value
}
