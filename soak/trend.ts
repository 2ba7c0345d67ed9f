/** One memory reading of the server, taken after a garbage collection. */
export interface MemorySample {
  /** Seconds since the soak began. */
  readonly at: number
  readonly heapUsed: number
  readonly rss: number
  /** Sessions in the server's cache at that moment. */
  readonly cached: number
}

/** Growth of one series over the steady part of a run. */
export interface Growth {
  /** Least-squares slope, in MB per minute. */
  readonly mbPerMinute: number
  /** What that slope adds over the steady part of the run, in MB. */
  readonly projectedMb: number
  /** First and last steady readings, in MB. */
  readonly firstMb: number
  readonly lastMb: number
}

const MB = 1024 * 1024

/**
 * The growth of `pick(sample)` over the samples after `warmupSeconds` (the cache fills up first,
 * which is expected growth, not a leak).
 */
export function growth(samples: readonly MemorySample[], pick: (sample: MemorySample) => number, warmupSeconds: number): Growth {
  const steady = samples.filter((sample) => sample.at >= warmupSeconds)
  const points = steady.length >= 2 ? steady : samples
  const n = points.length
  const first = points[0]
  const last = points[n - 1]
  if (first === undefined || last === undefined || n < 2) return { mbPerMinute: 0, projectedMb: 0, firstMb: 0, lastMb: 0 }
  const meanX = points.reduce((sum, p) => sum + p.at, 0) / n
  const meanY = points.reduce((sum, p) => sum + pick(p), 0) / n
  let covariance = 0
  let variance = 0
  for (const p of points) {
    covariance += (p.at - meanX) * (pick(p) - meanY)
    variance += (p.at - meanX) ** 2
  }
  const bytesPerSecond = variance === 0 ? 0 : covariance / variance
  return {
    mbPerMinute: round((bytesPerSecond * 60) / MB),
    projectedMb: round((bytesPerSecond * (last.at - first.at)) / MB),
    firstMb: round(pick(first) / MB),
    lastMb: round(pick(last) / MB),
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100
}
