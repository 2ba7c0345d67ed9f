/**
 * Principals section: the sessions of a user on a storage holding many (`sessionsOf`,
 * `revokeSessionsOf`), and what the principal index costs a write. One child per storage (see
 * principals.ts), run in turn; a storage whose server cannot be reached is reported, not fatal.
 */
import { benchScript, runSection } from '../lib/child.js'
import { SILENT, type CellProgress, type SectionPlan } from '../lib/progress.js'
import { targetLine, type SectionReport, type TargetCheck } from '../lib/report.js'
import { count, median, milliseconds, percentile, ratio } from '../lib/stats.js'
import { table } from '../lib/table.js'
import { BACKEND_LABELS, type BackendName } from '../storage/backends.js'
import type { IndexCell, PrincipalsResult, WriteKind } from './principals.js'

/** Sessions each seeded user has (principals.ts seeds them so). */
const SESSIONS_PER_USER = 10

/** Options of the principals section. */
export interface PrincipalsOptions {
  storages: readonly BackendName[]
  /** Sessions seeded in each storage. */
  sessions: number
  /** Seconds per write cell. */
  duration: number
  rounds: number
  /** Sessions writing at once in the write cells. */
  concurrency: number
}

/** Storages that index principals and that this section runs on (dynalite would take minutes to seed). */
export const PRINCIPAL_STORAGES: readonly BackendName[] = ['level', 'mysql', 'memory']

/** Storages that carry the ≤ 10% target. */
const TARGETED: readonly BackendName[] = ['level', 'mysql']

/** Indexed ÷ plain write throughput that meets the target. */
const TARGET = 0.9

const KINDS: Record<WriteKind, string> = {
  data: 'data key (principal unchanged)',
  principal: 'principal changed by every write',
}

function storagesOf(options: PrincipalsOptions): BackendName[] {
  return options.storages.filter((name) => PRINCIPAL_STORAGES.includes(name))
}

/** Measured seconds of one storage's child: every round, both kinds of write, both modes. */
function secondsPerStorage(options: PrincipalsOptions): number {
  return options.rounds * 2 * 2 * options.duration
}

/** The cells {@link runPrincipals} starts: one child per storage. */
export function planPrincipals(options: PrincipalsOptions): SectionPlan {
  const storages = storagesOf(options)
  return { cells: storages.length, seconds: storages.length * secondsPerStorage(options) }
}

/** Run the principals section, reporting each storage's child to `progress`. */
export async function runPrincipals(options: PrincipalsOptions, progress: CellProgress = SILENT): Promise<SectionReport> {
  const results: PrincipalsResult[] = []
  const failed = new Map<BackendName, string>()
  for (const name of storagesOf(options)) {
    progress.cell(`${name}: ${count(options.sessions)} sessions, ${options.rounds} rounds × 4 write cells`, secondsPerStorage(options))
    try {
      const perCell = options.duration * 1000 + 60_000
      results.push(
        await runSection<PrincipalsResult>(benchScript('principals/principals.ts'), {
          args: [name, String(options.sessions), String(options.duration), String(options.rounds), String(options.concurrency)],
          readyTimeoutMs: 600_000 + perCell * options.rounds * 4,
        }),
      )
    } catch (err) {
      failed.set(name, (err instanceof Error ? err.message : String(err)).split('\n')[0]!)
    }
  }
  return report(options, results, failed)
}

/** Indexed ÷ plain per round for `kind`, then the median and the range. */
function ratios(cells: readonly IndexCell[], kind: WriteKind): number[] {
  const of = (indexed: boolean): IndexCell[] => cells.filter((c) => c.kind === kind && c.indexed === indexed)
  const plain = of(false)
  return of(true).map((cell) => cell.rate / (plain.find((other) => other.round === cell.round)?.rate ?? Number.NaN))
}

function report(options: PrincipalsOptions, results: readonly PrincipalsResult[], failed: Map<BackendName, string>): SectionReport {
  const lookups: string[][] = []
  const writes: string[][] = []
  const targets: TargetCheck[] = []
  const targetName = (name: BackendName): string =>
    `${BACKEND_LABELS[name]}: write-through with the principal index ÷ without, ${count(options.concurrency)} sessions`
  for (const result of results) {
    lookups.push([
      BACKEND_LABELS[result.storage],
      count(result.seeded),
      `${result.seedSeconds.toFixed(1)} s`,
      milliseconds(median(result.lookupMs)),
      milliseconds(percentile(result.lookupMs, 99)),
      ratio(median(result.listed)),
      milliseconds(median(result.revokeMs)),
      milliseconds(percentile(result.revokeMs, 99)),
      ratio(median(result.revoked)),
    ])
    for (const kind of ['data', 'principal'] as const) {
      const mine = result.cells.filter((c) => c.kind === kind)
      const of = (indexed: boolean): IndexCell[] => mine.filter((c) => c.indexed === indexed)
      const perRound = ratios(result.cells, kind)
      const cost = median(perRound)
      writes.push([
        `${BACKEND_LABELS[result.storage]}, ${KINDS[kind]}`,
        count(median(of(true).map((c) => c.rate))),
        count(median(of(false).map((c) => c.rate))),
        ratio(cost),
        `${ratio(Math.min(...perRound))}–${ratio(Math.max(...perRound))}`,
        `${count(1 / median(of(true).map((c) => c.callsPerSet)))} / ${count(1 / median(of(false).map((c) => c.callsPerSet)))}`,
        count(mine.reduce((sum, c) => sum + c.failures, 0)),
      ])
      if (kind === 'data' && TARGETED.includes(result.storage)) {
        targets.push({
          name: targetName(result.storage),
          target: `≥ ${TARGET.toFixed(2)}`,
          measured: ratio(cost),
          met: Number.isFinite(cost) ? cost >= TARGET : undefined,
        })
      }
    }
  }
  for (const name of TARGETED) {
    if (failed.has(name)) targets.push({ name: targetName(name), target: `≥ ${TARGET.toFixed(2)}`, measured: 'not run', met: undefined })
  }
  const notes = [...failed].map(([name, reason]) => `- ${BACKEND_LABELS[name]}: not measured — ${reason}`)
  const body = [
    table(
      [
        'storage',
        'sessions stored',
        'seeding',
        '`sessionsOf` median',
        '`sessionsOf` p99',
        'listed per call',
        '`revokeSessionsOf` median',
        '`revokeSessionsOf` p99',
        'ended per call',
      ],
      lookups,
    ),
    '',
    table(
      [
        `storage, write (${count(options.concurrency)} sessions writing)`,
        'sets/s indexed',
        'sets/s plain',
        'indexed ÷ plain',
        '(min–max)',
        'sets per storage call, indexed / plain',
        'failed sets',
      ],
      writes,
    ),
    '',
    ...notes,
    ...(notes.length > 0 ? [''] : []),
    targetLine(targets),
  ].join('\n')
  return {
    title: 'Sessions of a user (principal index)',
    method: `Each storage is seeded with ${count(options.sessions)} live sessions, ${SESSIONS_PER_USER} per user, written straight through \`storage.batch\` with their principal (setup, not timed). Then, one call at a time on a manager with \`principal: 'userId'\`: \`manager.sessionsOf(user)\` for 200 random users, and \`manager.revokeSessionsOf(user)\` for 100 others, each ending that user's ${SESSIONS_PER_USER} sessions (deleted in storage, revoked in the cache). Then the index's cost to a write: acknowledged \`session.set\` calls per second of ${count(options.concurrency)} sessions writing at once, each session holding a \`userId\`, on a manager with \`principal: 'userId'\` ("indexed") and on one without ("plain"), otherwise the defaults (batching on); "data key" writes another key (the principal stays: the usual write), "principal changed" makes every write a new user id (the index entry moves each time: the worst case). ${options.rounds} rounds × ${options.duration} s per cell after a short unmeasured warm-up; in each round the two modes run back to back on the same storage (order flipping every round) and the ratio is taken per round, then the median. Each storage runs in its own process: LevelDB in a temporary folder, MariaDB in a table dropped after.`,
    body,
    targets,
  }
}
