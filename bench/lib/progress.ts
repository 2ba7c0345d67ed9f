/**
 * Progress of a bench run on stderr: one line when each cell starts (a server on a route, a
 * child process, a cluster setup), with its number among all the run's cells and the time left.
 * Plain lines, no carriage returns or spinners, so a CI log shows one line per cell.
 *
 * Each section plans its cells before the run starts (how many, and how many seconds of
 * measurement they are set to take). The time left is what is still planned, scaled by how
 * the run has kept to its plan so far (elapsed time ÷ planned seconds of the cells done), which
 * takes in what the plan leaves out: starting servers, warming up JITs, a loaded machine.
 */

/** What a section tells the progress about itself before the run. */
export interface SectionPlan {
  /** Cells the section will start. */
  cells: number
  /** Seconds of measurement they are planned to take, in all. */
  seconds: number
}

/** Where a section reports each cell as it starts it. */
export interface CellProgress {
  /** A cell named `label` starts now, planned to take `seconds`. */
  cell(label: string, seconds: number): void
}

/** Progress that reports nothing, for a section run on its own. */
export const SILENT: CellProgress = { cell: () => {} }

/** What one progress line says. */
export interface ProgressState {
  /** This cell's number, from 1. */
  n: number
  /** Cells in the run. */
  total: number
  /** What the cell measures. */
  label: string
  elapsedSeconds: number
  /** Estimated seconds left (this cell included); NaN when unknown. */
  leftSeconds: number
}

/** `45 s`, `2 min 05 s`, `14 min`, `1 h 05 min`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?'
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s} s`
  if (s < 600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`
  const minutes = Math.round(s / 60)
  if (minutes < 60) return `${minutes} min`
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`
}

/**
 * Seconds left: the planned seconds not done yet, times elapsed ÷ planned seconds done (the
 * plan itself before anything is done). Never negative.
 */
export function estimateLeft(elapsedSeconds: number, doneSeconds: number, plannedSeconds: number): number {
  const remaining = Math.max(0, plannedSeconds - doneSeconds)
  if (doneSeconds <= 0 || elapsedSeconds <= 0) return remaining
  return remaining * (elapsedSeconds / doneSeconds)
}

/** `[bench] cell 12/159 · http round 1, write: express-session · 2 min 10 s elapsed, ~14 min left` */
export function progressLine(state: ProgressState): string {
  const width = String(state.total).length
  return `[bench] cell ${String(state.n).padStart(width)}/${state.total} · ${state.label} · ${formatDuration(state.elapsedSeconds)} elapsed, ~${formatDuration(state.leftSeconds)} left`
}

interface SectionCount {
  plan: SectionPlan
  startedCells: number
  startedSeconds: number
}

/**
 * The run's progress over every planned section. A section that starts more cells than it
 * planned grows the total; one that ends with cells left (a storage that did not answer, a
 * server that does not exist yet) counts them as done when it finishes.
 */
export class BenchProgress {
  readonly #sections = new Map<string, SectionCount>()
  readonly #write: (line: string) => void
  readonly #now: () => number
  readonly #began: number
  /** Planned seconds of the cells finished (or skipped) so far. */
  #doneSeconds = 0
  /** Planned seconds of the cell running now. */
  #runningSeconds = 0
  #started = 0

  /**
   * @param plans - each section's plan, by name.
   * @param write - where lines go (stderr by default).
   * @param now - milliseconds, monotonic (`performance.now` by default).
   */
  constructor(
    plans: ReadonlyMap<string, SectionPlan>,
    write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
    now: () => number = () => performance.now(),
  ) {
    for (const [name, plan] of plans) this.#sections.set(name, { plan: { ...plan }, startedCells: 0, startedSeconds: 0 })
    this.#write = write
    this.#now = now
    this.#began = now()
  }

  /** Cells in the run, as planned so far. */
  get total(): number {
    return [...this.#sections.values()].reduce((sum, section) => sum + section.plan.cells, 0)
  }

  /** Planned seconds of the run, as planned so far. */
  get plannedSeconds(): number {
    return [...this.#sections.values()].reduce((sum, section) => sum + section.plan.seconds, 0)
  }

  /** The progress a section reports its cells to. */
  section(name: string): CellProgress {
    return { cell: (label, seconds) => this.#cell(name, label, seconds) }
  }

  /** `name` has ended: its cells not started count as done. */
  finish(name: string): void {
    const section = this.#sections.get(name)
    if (section === undefined) return
    this.#doneSeconds += this.#runningSeconds + Math.max(0, section.plan.seconds - section.startedSeconds)
    this.#runningSeconds = 0
    this.#started += Math.max(0, section.plan.cells - section.startedCells)
    section.plan.cells = Math.max(section.plan.cells, section.startedCells)
    section.startedCells = section.plan.cells
    section.plan.seconds = Math.max(section.plan.seconds, section.startedSeconds)
    section.startedSeconds = section.plan.seconds
  }

  #cell(name: string, label: string, seconds: number): void {
    let section = this.#sections.get(name)
    if (section === undefined) {
      section = { plan: { cells: 0, seconds: 0 }, startedCells: 0, startedSeconds: 0 }
      this.#sections.set(name, section)
    }
    // The cell before this one has ended.
    this.#doneSeconds += this.#runningSeconds
    this.#runningSeconds = seconds
    section.startedCells++
    section.startedSeconds += seconds
    if (section.startedCells > section.plan.cells) section.plan.cells = section.startedCells
    if (section.startedSeconds > section.plan.seconds) section.plan.seconds = section.startedSeconds
    this.#started++
    const elapsedSeconds = (this.#now() - this.#began) / 1000
    this.#write(
      progressLine({
        n: this.#started,
        total: this.total,
        label: `${name} ${label}`,
        elapsedSeconds,
        leftSeconds: estimateLeft(elapsedSeconds, this.#doneSeconds, this.plannedSeconds),
      }),
    )
  }
}
