/**
 * Storage write-through section: one child process per storage (see write-through.ts), run in
 * turn; a storage whose server cannot be reached is reported, not fatal.
 */
import { benchScript, runSection } from '../lib/child.js'
import { SILENT, type CellProgress, type SectionPlan } from '../lib/progress.js'
import { targetLine, type SectionReport, type TargetCheck } from '../lib/report.js'
import { count, median, ratio } from '../lib/stats.js'
import { table } from '../lib/table.js'
import { BACKEND_LABELS, type BackendName } from './backends.js'
import type { WriteCell } from './write-through.js'

/** Options of the storage section. */
export interface StorageOptions {
  storages: readonly BackendName[]
  /** Seconds per cell. */
  duration: number
  rounds: number
  concurrency: readonly number[]
}

/** Storages that carry the ≥ 5× target. */
const TARGETED: readonly BackendName[] = ['level', 'mysql']

/** Acknowledged sets per second MySQLStorage must reach batching at the top concurrency. */
const MYSQL_RATE_TARGET = 150_000

/** The name of the MariaDB write-through rate target at `top` sessions. */
function rateTargetName(top: number): string {
  return `write-through sets/s on MariaDB (MySQLStorage), ${count(top)} sessions, batching`
}

/** Measured seconds of one storage's child: every round, every concurrency, both modes. */
function secondsPerStorage(options: StorageOptions): number {
  return options.rounds * options.concurrency.length * 2 * options.duration
}

/** The cells {@link runStorage} starts: one child per storage. */
export function planStorage(options: StorageOptions): SectionPlan {
  return { cells: options.storages.length, seconds: options.storages.length * secondsPerStorage(options) }
}

/** Run the storage section, reporting each storage's child to `progress`. */
export async function runStorage(options: StorageOptions, progress: CellProgress = SILENT): Promise<SectionReport> {
  const cells: WriteCell[] = []
  const failed = new Map<BackendName, string>()
  for (const name of options.storages) {
    progress.cell(`${name}: ${options.rounds} rounds × ${options.concurrency.length * 2} cells`, secondsPerStorage(options))
    try {
      const perCell = options.duration * 1000 + 60_000
      cells.push(
        ...(await runSection<WriteCell[]>(benchScript('storage/write-through.ts'), {
          args: [name, String(options.duration), String(options.rounds), options.concurrency.join(',')],
          readyTimeoutMs: 120_000 + perCell * options.rounds * options.concurrency.length * 2,
        })),
      )
    } catch (err) {
      failed.set(name, (err instanceof Error ? err.message : String(err)).split('\n')[0]!)
    }
  }
  return report(options, cells, failed)
}

function report(options: StorageOptions, cells: readonly WriteCell[], failed: Map<BackendName, string>): SectionReport {
  const rows: string[][] = []
  const targets: TargetCheck[] = []
  const top = Math.max(...options.concurrency)
  for (const name of options.storages) {
    if (failed.has(name)) continue
    for (const concurrency of options.concurrency) {
      const of = (batching: boolean): WriteCell[] => cells.filter((c) => c.storage === name && c.concurrency === concurrency && c.batching === batching)
      const on = of(true)
      const off = of(false)
      // Same round, same storage: the two modes ran back to back.
      const ratios = on.map((cell) => cell.rate / (off.find((other) => other.round === cell.round)?.rate ?? Number.NaN))
      const speedup = median(ratios)
      rows.push([
        `${BACKEND_LABELS[name]}, ${count(concurrency)} sessions`,
        count(median(on.map((c) => c.rate))),
        count(median(off.map((c) => c.rate))),
        `${ratio(speedup)}×`,
        `${ratio(Math.min(...ratios))}–${ratio(Math.max(...ratios))}×`,
        ratio(median(on.map((c) => c.callsPerSet))),
        count([...on, ...off].reduce((sum, c) => sum + c.failures, 0)),
      ])
      if (concurrency === top && TARGETED.includes(name)) {
        targets.push({
          name: `${BACKEND_LABELS[name]}: batching ÷ one-by-one at ${count(top)} sessions`,
          target: '≥ 5×',
          measured: `${ratio(speedup)}×`,
          met: Number.isFinite(speedup) ? speedup >= 5 : undefined,
        })
      }
      if (concurrency === top && name === 'mysql') {
        const rate = median(on.map((c) => c.rate))
        targets.push({
          name: rateTargetName(top),
          target: `≥ ${count(MYSQL_RATE_TARGET)}`,
          measured: count(rate),
          met: Number.isFinite(rate) ? rate >= MYSQL_RATE_TARGET : undefined,
        })
      }
    }
  }
  for (const name of TARGETED) {
    if (options.storages.includes(name) && failed.has(name)) {
      targets.push({ name: `${BACKEND_LABELS[name]}: batching ÷ one-by-one at ${count(top)} sessions`, target: '≥ 5×', measured: 'not run', met: undefined })
    }
  }
  if (options.storages.includes('mysql') && failed.has('mysql')) {
    targets.push({ name: rateTargetName(top), target: `≥ ${count(MYSQL_RATE_TARGET)}`, measured: 'not run', met: undefined })
  }
  const notes = [...failed].map(([name, reason]) => `- ${BACKEND_LABELS[name]}: not measured — ${reason}`)
  const body = [
    table(
      [
        'storage, sessions writing',
        'sets/s batching',
        'sets/s one-by-one',
        'batching ÷ one-by-one',
        '(min–max)',
        'storage calls per set, batching',
        'failed sets',
      ],
      rows,
    ),
    '',
    ...notes,
    ...(notes.length > 0 ? [''] : []),
    targetLine(targets),
  ].join('\n')
  return {
    title: 'Storage write-through',
    method: `Acknowledged \`session.set\` calls per second: N sessions each write one key in a loop, awaiting every write (the promise settles when the storage acknowledged it). "batching" is the default manager (\`storage.batch\`, 2 in flight, up to 500 operations each); "one-by-one" is \`new SessionManager({ batching: false })\` (one storage call per write, 64 in flight). ${options.rounds} rounds × ${options.duration} s per cell after a short unmeasured warm-up; in each round the two modes run back to back (order flipping every round) on the same storage, and the ratio is taken per round, then the median. Each storage runs in its own process; LevelDB in a temporary folder, MariaDB in a table dropped after, dynalite in a worker thread of the bench process.`,
    body,
    targets,
  }
}
