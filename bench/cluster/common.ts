/**
 * What the cluster bench's parent and its server processes share: how a server is configured,
 * the messages they exchange over IPC, and the counters a server reports.
 */

/** The MariaDB/MySQL server every process of the cluster bench shares. */
export const MYSQL_URL = process.env['MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test'

/** The Redis server of the invalidation bus. */
export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'

/** How one server process is set up (passed as its only argument, JSON). */
export interface ClusterServerConfig {
  /** The MySQL table every server of the run shares. */
  table: string
  /** The Redis pub/sub channel of the bus, or `undefined` for no bus. */
  busChannel: string | undefined
  /**
   * Whether the storage is declared shared (MySQLStorage as it is). `false` wraps it in a
   * storage that declares itself unshared: no version checks and no versioned cookie, which is
   * what read-your-writes is measured against.
   */
  shared: boolean
}

/** The parent asks a server for its counters with `{ type: 'stats' }`; this is the answer. */
export interface StatsMessage {
  type: 'stats'
  counters: ServerCounters
}

/** What a server counted so far: its manager's stats, its bus's, and its CPU time. */
export interface ServerCounters {
  /** User + system CPU time of the server process, microseconds. */
  cpuMicros: number
  /** Storage reads (`manager.stats().loads`). */
  loads: number
  /** Version probes sent to the storage (`probeCalls`). */
  probeCalls: number
  /** Cached sessions checked by those probes (`probed`). */
  probed: number
  /** Storage write calls, a batch counting once (`storageCalls`). */
  storageCalls: number
  /** Write operations sent (`operations`). */
  operations: number
  /** Requests served from the cache without a check (`hits`). */
  hits: number
  misses: number
  staleReloads: number
  revokedElsewhere: number
  conflicts: number
  /** Bus messages sent and received (0 without a bus). */
  busSent: number
  busReceived: number
  /** Request handlers that failed (answered 5xx). */
  failures: number
}

/** The counters of `after` minus those of `before`. */
export function difference(after: ServerCounters, before: ServerCounters): ServerCounters {
  const result = { ...after }
  for (const key of Object.keys(result) as (keyof ServerCounters)[]) result[key] = after[key] - before[key]
  return result
}

/** The sum of several servers' counters. */
export function sum(all: readonly ServerCounters[]): ServerCounters {
  const total: ServerCounters = {
    cpuMicros: 0,
    loads: 0,
    probeCalls: 0,
    probed: 0,
    storageCalls: 0,
    operations: 0,
    hits: 0,
    misses: 0,
    staleReloads: 0,
    revokedElsewhere: 0,
    conflicts: 0,
    busSent: 0,
    busReceived: 0,
    failures: 0,
  }
  for (const counters of all) for (const key of Object.keys(total) as (keyof ServerCounters)[]) total[key] += counters[key]
  return total
}
