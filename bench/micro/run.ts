/**
 * Micro section: in-process timings (mitata), each measurement in a fresh child process and
 * repeated over rounds (medians reported), plus call counters.
 */
import { benchScript, runSection } from '../lib/child.js'
import { SILENT, type CellProgress, type SectionPlan } from '../lib/progress.js'
import { targetLine, type SectionReport, type TargetCheck } from '../lib/report.js'
import { count, median, nanoseconds, ratio } from '../lib/stats.js'
import { table } from '../lib/table.js'
import type { CacheSizeResult } from './cache-size.js'
import type { CounterResult, HostileResult } from './counters.js'
import type { SpeedResult } from './speed.js'

/** Options of the micro section. */
export interface MicroOptions {
  rounds: number
  /** CPU milliseconds per timed measurement. */
  cpuMs: number
  /** Cached-session counts of the cache-size bench. */
  cacheSizes: readonly number[]
  /** Distinct cookies and resolutions per cookie of the counters. */
  counterCookies: number
  counterRepeats: number
}

/** What the counters child reports. */
interface Counters {
  library: CounterResult
  expressSession: CounterResult
  hostile: HostileResult
}

/** Timings per child: speed.ts times five operations, cache-size.ts two per size. */
const SPEED_TIMINGS = 5
const CACHE_SIZE_TIMINGS = 2
/** The counters child times nothing; about a second here. */
const COUNTERS_SECONDS = 1

/** The cells {@link runMicro} starts: per round a speed child and a child per cache size, then the counters. */
export function planMicro(options: MicroOptions): SectionPlan {
  const cpu = options.cpuMs / 1000
  return {
    cells: options.rounds * (1 + options.cacheSizes.length) + 1,
    seconds: options.rounds * (SPEED_TIMINGS + CACHE_SIZE_TIMINGS * options.cacheSizes.length) * cpu + COUNTERS_SECONDS,
  }
}

/** Run the micro section, reporting each child to `progress`. */
export async function runMicro(options: MicroOptions, progress: CellProgress = SILENT): Promise<SectionReport> {
  const speeds: SpeedResult[] = []
  const sizes: CacheSizeResult[] = []
  const cpu = options.cpuMs / 1000
  for (let round = 0; round < options.rounds; round++) {
    progress.cell(`round ${round + 1}/${options.rounds}: speed`, SPEED_TIMINGS * cpu)
    speeds.push(await runSection<SpeedResult>(benchScript('micro/speed.ts'), { args: [String(options.cpuMs)], readyTimeoutMs: 300_000 }))
    // Sizes alternate within each round; each runs in a fresh process with a full GC before each timing.
    for (const size of options.cacheSizes) {
      progress.cell(`round ${round + 1}/${options.rounds}: ${size} sessions cached`, CACHE_SIZE_TIMINGS * cpu)
      sizes.push(
        await runSection<CacheSizeResult>(benchScript('micro/cache-size.ts'), {
          args: [String(size), String(options.cpuMs)],
          nodeArgs: ['--expose-gc'],
          readyTimeoutMs: 600_000,
        }),
      )
    }
  }
  progress.cell('counters', COUNTERS_SECONDS)
  const counters = await runSection<Counters>(benchScript('micro/counters.ts'), {
    args: [String(options.counterCookies), String(options.counterRepeats)],
    readyTimeoutMs: 300_000,
  })
  return report(options, speeds, sizes, counters)
}

function report(options: MicroOptions, speeds: readonly SpeedResult[], sizes: readonly CacheSizeResult[], counters: Counters): SectionReport {
  const m = (pick: (speed: SpeedResult) => number): number => median(speeds.map(pick))
  const get = m((s) => s.sessionGet)
  const mapGet = m((s) => s.mapGet)
  const resolve = m((s) => s.resolve)
  const middleware = m((s) => s.middleware)
  const express = m((s) => s.expressSession)
  const speedTable = table(
    ['operation', 'ns/op (median)', 'next to', 'ratio'],
    [
      ['`session.get(key)` on a resolved session', nanoseconds(get), `\`Map.get\`: ${nanoseconds(mapGet)}`, `${ratio(get / mapGet)}×`],
      ['`manager.resolve(req, res)`, cache hit (parse cookie, verify, cache lookup)', nanoseconds(resolve), '', ''],
      [
        '`manager.middleware()` run to `next`, cache hit',
        nanoseconds(middleware),
        `express-session to \`next\`: ${nanoseconds(express)}`,
        `${ratio(express / middleware)}× faster`,
      ],
    ],
  )

  const counterRow = (name: string, c: CounterResult): string[] => [
    name,
    count(c.resolutions),
    count(c.distinct),
    count(c.signatures),
    count(c.hmacs),
    count(c.jsonParses),
    count(c.hits),
  ]
  const counterTable = table(
    ['resolutions of cache hits', 'requests', 'distinct cookies', 'HMAC signatures', 'all createHmac', 'JSON.parse', 'session found'],
    [counterRow('caching-session-manager', counters.library), counterRow('express-session (MemoryStore)', counters.expressSession)],
  )
  const hostile = counters.hostile
  const hostileBound = 4 * hostile.keys
  const hostileTable = table(
    ['one hostile request', 'HMACs per hostile request', 'CPU per hostile request'],
    [
      ['caching-session-manager', count(hostile.library), `${hostile.libraryCpuMicroseconds.toFixed(0)} µs`],
      ['express-session (cookie-signature)', count(hostile.expressSession), ''],
    ],
  )

  const bySize = options.cacheSizes.map((size) => {
    const runs = sizes.filter((result) => result.size === size)
    const pick = (f: (r: CacheSizeResult) => number): number => median(runs.map(f))
    return {
      size,
      hot: pick((r) => r.hotResolveNs),
      uniform: pick((r) => r.uniformResolveNs),
      mapHot: pick((r) => r.hotMapGetNs),
      mapUniform: pick((r) => r.uniformMapGetNs),
      lruHot: pick((r) => r.hotLruGetNs),
      fill: pick((r) => r.fillSeconds),
      reads: runs.reduce((sum, r) => sum + r.readsWhileMeasuring, 0),
    }
  })
  const base = bySize[0]
  const spread = (f: (row: (typeof bySize)[number]) => number): number =>
    base === undefined ? Number.NaN : Math.max(...bySize.map((row) => Math.abs(f(row) / f(base) - 1)))
  const sizeTable = table(
    [
      'cached sessions',
      'resolve, hot 1024',
      'resolve, uniform',
      'lru-cache get, hot',
      'Map.get, hot',
      'Map.get, uniform',
      'fill time',
      'storage reads while timing',
    ],
    bySize.map((row) => [
      count(row.size),
      `${nanoseconds(row.hot)} (${ratio(base === undefined ? Number.NaN : row.hot / base.hot)}×)`,
      `${nanoseconds(row.uniform)} (${ratio(base === undefined ? Number.NaN : row.uniform / base.uniform)}×)`,
      `${nanoseconds(row.lruHot)} (${ratio(base === undefined ? Number.NaN : row.lruHot / base.lruHot)}×)`,
      `${nanoseconds(row.mapHot)} (${ratio(base === undefined ? Number.NaN : row.mapHot / base.mapHot)}×)`,
      `${nanoseconds(row.mapUniform)} (${ratio(base === undefined ? Number.NaN : row.mapUniform / base.mapUniform)}×)`,
      `${row.fill.toFixed(1)} s`,
      count(row.reads),
    ]),
  )
  const hotSpread = spread((row) => row.hot)
  const uniformSpread = spread((row) => row.uniform)

  const lib = counters.library
  const targets: TargetCheck[] = [
    { name: '`session.get(key)`', target: '≤ 50 ns/op', measured: nanoseconds(get), met: get <= 50 },
    {
      name: 'HMAC verifications per distinct cookie value (cache hits)',
      target: '≤ 1',
      measured: `${count(lib.signatures)} for ${count(lib.distinct)} cookies over ${count(lib.resolutions)} requests`,
      met: lib.signatures <= lib.distinct && lib.hits === lib.resolutions,
    },
    {
      name: 'HMACs per hostile request (8 forged ids × 8 forged signatures, 3 keys)',
      target: `≤ ${hostileBound} (4 values × keys)`,
      measured: count(hostile.library),
      met: hostile.library <= hostileBound,
    },
    { name: 'JSON.parse calls on cache hits', target: '0', measured: count(lib.jsonParses), met: lib.jsonParses === 0 && lib.hits === lib.resolutions },
    {
      name: `resolution on a cache hit, hot set, ${bySize.map((row) => count(row.size)).join(' / ')} cached`,
      target: 'flat (±20%)',
      measured: `largest deviation ${(hotSpread * 100).toFixed(0)}%`,
      met: Number.isFinite(hotSpread) ? hotSpread <= 0.2 : undefined,
    },
    {
      name: `resolution on a cache hit, uniform over all, ${bySize.map((row) => count(row.size)).join(' / ')} cached`,
      target: 'flat (±20%)',
      measured: `largest deviation ${(uniformSpread * 100).toFixed(0)}%`,
      met: Number.isFinite(uniformSpread) ? uniformSpread <= 0.2 : undefined,
    },
  ]
  const body = [
    speedTable,
    '',
    `Counters: \`crypto.createHmac\` and \`JSON.parse\` wrapped with counters in the bench process; ${count(lib.distinct)} distinct session cookies each resolved ${count(lib.resolutions / Math.max(lib.distinct, 1))} times. "HMAC signatures" counts HMACs keyed with the signing secret (one per signature computed or checked); "all createHmac" counts every call (a Keygrip given as keys adds two per check for its constant-time compare). A cookie this library signed is remembered, so its sessions' first requests cost none either.`,
    '',
    counterTable,
    '',
    `Hostile request: ${hostile.forgedValues} well-formed forged ids and ${hostile.forgedValues} signature-shaped forged signatures in one Cookie header (${count(hostile.headerBytes)} bytes), ${hostile.keys} signing keys in each library; \`createHmac\` calls counted for one request, CPU time over 200 (counting wrappers in place). express-session reads only the first value of its cookie, and checks it once per secret.`,
    '',
    hostileTable,
    '',
    'Cache size: sessions loaded through the public path (signed cookie, cache miss, storage read) from a storage that builds records on the fly and keeps nothing; cacheLimit and verifiedCacheSize set to the size. Each size in a fresh process, a full GC before each timing. "hot 1024" resolves requests for 1024 of the sessions; "uniform" for sessions picked at random among all of them. Ratios are to the smallest size.',
    '',
    sizeTable,
    '',
    targetLine(targets),
  ].join('\n')
  return {
    title: 'Micro',
    method: `In-process with mitata (\`measure\`, median of samples, ~${options.cpuMs} ms of CPU per timing), each run in a fresh child process, ${options.rounds} rounds; medians over rounds. Fake requests carry the signed cookie of a live session; the express-session run goes through its middleware on a MemoryStore to \`next\` (its store reads are asynchronous).`,
    body,
    targets,
  }
}
