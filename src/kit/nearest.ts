/**
 * The nearest of some names to a misspelt one, for "did you mean" messages.
 */

/**
 * Edit distance between `a` and `b` (optimal string alignment: insertions, deletions,
 * substitutions and swaps of two neighbours each cost 1), or `limit + 1` as soon as it is
 * known to be over `limit`, so a very long name costs little.
 */
export function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1
  let before: number[] = []
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    let best = i
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, before[j - 2]! + 1)
      current.push(value)
      best = Math.min(best, value)
    }
    if (best > limit) return limit + 1
    before = previous
    previous = current
  }
  return previous[b.length]!
}

/**
 * The name of `names` nearest to `given`, ignoring case, when it is near enough to be what was
 * meant: at most 1 edit for names of up to 3 characters, else at most 2 or a third of the
 * length, whichever is more. The first of equally near names wins; `undefined` when none is near.
 *
 * @example
 * ```ts
 * nearestName('cacheLimt', ['cacheLimit', 'maxAge']) // 'cacheLimit'
 * nearestName('colour', ['cacheLimit', 'maxAge']) // undefined
 * ```
 */
export function nearestName(given: string, names: readonly string[]): string | undefined {
  const lower = given.toLowerCase()
  let limit = lower.length <= 3 ? 1 : Math.max(2, Math.floor(lower.length / 3))
  let nearest: string | undefined
  for (const name of names) {
    const distance = editDistance(lower, name.toLowerCase(), limit)
    if (distance <= limit) {
      nearest = name
      if (distance === 0) break
      limit = distance - 1
    }
  }
  return nearest
}
