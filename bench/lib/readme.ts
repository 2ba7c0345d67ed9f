/**
 * Results into bench/README.md: the block between the two markers is replaced, the rest of the
 * file (how to run, what the profiles showed) is kept. A file without the markers gets the
 * block appended.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'

export const START = '<!-- bench:results:start -->'
export const END = '<!-- bench:results:end -->'

/** Put `results` between the markers of `file` (creating the file or the markers if needed). */
export function writeResults(file: string, results: string): void {
  const block = `${START}\n${results.trim()}\n${END}`
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n'
  const start = current.indexOf(START)
  const end = current.indexOf(END)
  const next = start !== -1 && end > start ? current.slice(0, start) + block + current.slice(end + END.length) : `${current.trimEnd()}\n\n${block}\n`
  writeFileSync(file, next)
}
