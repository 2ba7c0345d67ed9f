/** Small statistics and number formatting shared by the sections. */

/** The median of `values` (the mean of the two middle ones for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Smallest and largest of `values`. */
export function range(values: readonly number[]): [number, number] {
  return [Math.min(...values), Math.max(...values)]
}

/** A count with thousands separators: `12 345`. */
export function count(value: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  return Math.round(value)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ' ')
}

/** A ratio with two decimals: `0.83`. */
export function ratio(value: number): string {
  return Number.isFinite(value) ? value.toFixed(2) : 'n/a'
}

/** Nanoseconds, with one decimal under 100: `41.3 ns`, `612 ns`, `3.4 µs`. */
export function nanoseconds(value: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  if (value < 100) return `${value.toFixed(1)} ns`
  if (value < 10_000) return `${Math.round(value)} ns`
  return `${(value / 1000).toFixed(1)} µs`
}

/** Bytes in KB (1024) with two decimals: `1.62 KB`. */
export function kilobytes(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(2)} KB` : 'n/a'
}

/** The `p`-th percentile of `values` (nearest rank, `p` from 0 to 100); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** Milliseconds with two decimals under 10, one under 100: `0.42 ms`, `12.3 ms`, `140 ms`. */
export function milliseconds(value: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  if (value < 10) return `${value.toFixed(2)} ms`
  if (value < 100) return `${value.toFixed(1)} ms`
  return `${Math.round(value)} ms`
}
