/** Memory section: heap per cached session, each variant in its own process, over rounds. */
import { benchScript, runSection } from '../lib/child.js'
import { SILENT, type CellProgress, type SectionPlan } from '../lib/progress.js'
import { targetLine, type SectionReport, type TargetCheck } from '../lib/report.js'
import { count, median } from '../lib/stats.js'
import { table } from '../lib/table.js'
import type { HeapResult } from './heap.js'

/** Options of the memory section. */
export interface MemoryOptions {
  sessions: number
  rounds: number
}

const VARIANTS: ReadonlyArray<[string, string]> = [
  ['library', 'caching-session-manager cache (signed CookieIdentity)'],
  ['library-unsigned', 'caching-session-manager cache (unsigned CookieIdentity)'],
  ['express-session', 'express-session MemoryStore'],
  ['map', 'plain Map of parsed objects'],
]

/** The target: 1 700 B of heap per cached session with a signed identity. */
const LIMIT_BYTES = 1700

/** Seconds to fill and weigh one structure: nothing sets it, about this per 100 000 sessions here. */
const SECONDS_PER_100K = 3

/** The cells {@link runMemory} starts: one child per structure per round. */
export function planMemory(options: MemoryOptions): SectionPlan {
  const cells = options.rounds * VARIANTS.length
  return { cells, seconds: (cells * SECONDS_PER_100K * options.sessions) / 100_000 }
}

/** Run the memory section, reporting each child to `progress`. */
export async function runMemory(options: MemoryOptions, progress: CellProgress = SILENT): Promise<SectionReport> {
  const results: HeapResult[] = []
  for (let round = 0; round < options.rounds; round++) {
    for (const [variant] of VARIANTS) {
      progress.cell(`round ${round + 1}/${options.rounds}: ${variant}`, (SECONDS_PER_100K * options.sessions) / 100_000)
      results.push(
        await runSection<HeapResult>(benchScript('memory/heap.ts'), {
          args: [variant, String(options.sessions)],
          nodeArgs: ['--expose-gc'],
          readyTimeoutMs: 600_000,
        }),
      )
    }
  }
  const rows = VARIANTS.map(([variant, label]) => {
    const mine = results.filter((r) => r.variant === variant)
    return {
      variant,
      label,
      heap: median(mine.map((r) => r.heapPerSession)),
      total: median(mine.map((r) => r.totalPerSession)),
      held: Math.min(...mine.map((r) => r.held)),
      json: median(mine.map((r) => r.jsonBytes)),
    }
  })
  const library = rows.find((row) => row.variant === 'library')!
  const map = rows.find((row) => row.variant === 'map')!
  const targets: TargetCheck[] = [
    {
      name: `heap per cached session, signed CookieIdentity (~1 KB JSON, ${count(options.sessions)} sessions)`,
      target: `≤ ${count(LIMIT_BYTES)} B`,
      measured: `${count(library.heap)} B`,
      met: library.held === options.sessions ? library.heap <= LIMIT_BYTES : false,
    },
  ]
  const body = [
    table(
      ['structure', 'heap bytes / session', 'with ArrayBuffers', '÷ plain Map', 'sessions held'],
      rows.map((row) => [row.label, count(row.heap), count(row.total), (row.heap / map.heap).toFixed(2), count(row.held)]),
    ),
    '',
    `Session data: ${count(library.json)} bytes of JSON each (a user, roles, preferences, a 4-item cart, a token). "with ArrayBuffers" adds \`process.memoryUsage().arrayBuffers\`, where lru-cache keeps its list links (its ttl start times are a JS array, in \`heapUsed\`).`,
    '',
    targetLine(targets),
  ].join('\n')
  return {
    title: 'Memory',
    method: `Each structure is filled with ${count(options.sessions)} sessions in a fresh process (\`--expose-gc\`); \`heapUsed\` after four full GCs is compared before and after filling, divided by the sessions. The library's sessions are loaded through the public path (signed cookie, cache miss, storage read) from a storage that keeps nothing, so only the cache — the session states, the LRU, and the identity's verified-signature memory — is counted. express-session's MemoryStore holds what express-session gives it (the data and its cookie object, kept as JSON text). Every variant keeps its own copy of each id. ${options.rounds} rounds, medians.`,
    body,
    targets,
  }
}
