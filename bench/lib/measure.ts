/** Timing of in-process benches with mitata, bounded in CPU time. */
import { measure } from 'mitata'

/** Median nanoseconds per call of `fn` (sync or async), sampled for about `cpuMs` of CPU time. */
export async function nsPerOp(fn: () => unknown, cpuMs: number): Promise<number> {
  const stats = await measure(fn, { min_cpu_time: cpuMs * 1e6, min_samples: 12 })
  return stats.p50
}
