/** What {@link runAtFixedRate} did. */
export interface FixedRateResult {
  /** Starts that were due over the run (rate × duration). */
  readonly due: number
  /** Tasks that ran. */
  readonly started: number
  /** Starts the task declined (it had nothing free to run on: the load generator fell behind). */
  readonly declined: number
  /** Tasks still running when the wait for them ended. */
  readonly unfinished: number
}

/**
 * Start `task` `ratePerSecond` times a second for `durationMs`, whether earlier ones have finished
 * or not (an open loop: a slow server does not slow the arrivals down), then wait up to
 * `drainMs` for the last ones. `task` resolves `false` when it could not start.
 *
 * @example
 * ```ts
 * const result = await runAtFixedRate(200, 30_000, () => workload.step())
 * ```
 */
export async function runAtFixedRate(ratePerSecond: number, durationMs: number, task: () => Promise<boolean>, drainMs = 30_000): Promise<FixedRateResult> {
  const running = new Set<Promise<void>>()
  let due = 0
  let started = 0
  let declined = 0
  const begin = performance.now()
  const launch = (): void => {
    const run = task().then(
      (ran) => {
        if (ran) started++
        else declined++
      },
      () => {
        started++
      },
    )
    running.add(run)
    void run.finally(() => running.delete(run))
  }
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = Math.min(performance.now() - begin, durationMs)
      const target = Math.floor((ratePerSecond * elapsed) / 1000)
      while (due < target) {
        due++
        launch()
      }
      if (elapsed >= durationMs) {
        clearInterval(timer)
        resolve()
      }
    }, 5)
  })
  let timer: NodeJS.Timeout | undefined
  await Promise.race([Promise.all(running), new Promise((resolve) => (timer = setTimeout(resolve, drainMs)))])
  clearTimeout(timer)
  return { due, started, declined, unfinished: running.size }
}
