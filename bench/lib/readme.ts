/**
 * Results into bench/README.md. Everything between the two results markers belongs to the
 * bench; the rest of the file (how to run, what the profiles showed) is kept. Inside, each
 * section is a block of its own, with the date, command, Node version and load average of the
 * run that produced it, so running some sections (`--only cluster`) replaces their blocks and
 * keeps the others. The targets table at the top is rebuilt from every block each time (each
 * block carries its targets as JSON in a comment). A file without the markers gets the results
 * appended. Charts drawn from a section's block are written next to the file each time too.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { SectionReport, TargetCheck } from './report.js'
import { table } from './table.js'

export const START = '<!-- bench:results:start -->'
export const END = '<!-- bench:results:end -->'

const TARGETS = '<!-- bench:targets '
const COMMENT_END = ' -->'

function blockStart(name: string): string {
  return `<!-- bench:section:${name}:start -->`
}

function blockEnd(name: string): string {
  return `<!-- bench:section:${name}:end -->`
}

/** A picture drawn from one section's block and written next to the README. */
export interface ReadmeChart {
  /** The section whose block it is drawn from. */
  section: string
  /** File name, in the README's folder. */
  file: string
  /** The SVG text for the block, or `undefined` when the block holds nothing to draw. */
  render: (block: string) => string | undefined
}

/** First line of the results, on stdout and in the file alike. */
export const RESULTS_HEADER =
  'Each section below is the latest run of that section; its first line says when, with which command, on which Node and at which load average it ran. The machine is shared (other engineers run test suites on the same 2 cores), so absolute numbers move from run to run; the ratios, taken between runs made back to back in alternating order, are the point.'

/** A section's block: heading, provenance, method, body, and its targets for the summary table. */
export function sectionBlock(name: string, report: SectionReport, provenance: string): string {
  // `--` cannot appear inside an HTML comment; JSON reads `\u002d` back as `-`.
  const targets = JSON.stringify({ run: provenance.slice(0, provenance.indexOf(' UTC')), targets: report.targets }).replace(/--/g, '-\\u002d')
  return [
    blockStart(name),
    `### ${report.title}`,
    '',
    provenance,
    '',
    report.method,
    '',
    report.body.trim(),
    '',
    `${TARGETS}${targets}${COMMENT_END}`,
    blockEnd(name),
  ].join('\n')
}

/** The section blocks found in `text`, by section name. */
export function sectionBlocks(text: string): Map<string, string> {
  const blocks = new Map<string, string>()
  const pattern = /<!-- bench:section:([a-z0-9-]+):start -->/g
  for (const match of text.matchAll(pattern)) {
    const name = match[1]!
    const end = text.indexOf(blockEnd(name), match.index)
    if (end !== -1) blocks.set(name, text.slice(match.index, end + blockEnd(name).length))
  }
  return blocks
}

/** The targets a block carries, with the date of its run. */
function targetsOf(block: string): { run: string; targets: TargetCheck[] } {
  const start = block.indexOf(TARGETS)
  if (start === -1) return { run: '', targets: [] }
  const end = block.indexOf(COMMENT_END, start)
  try {
    return JSON.parse(block.slice(start + TARGETS.length, end)) as { run: string; targets: TargetCheck[] }
  } catch {
    return { run: '', targets: [] }
  }
}

/**
 * The results: the header, the targets of every block, the sections that failed in this run,
 * then the blocks in `order` (blocks of sections no longer known come last).
 */
export function renderResults(blocks: ReadonlyMap<string, string>, order: readonly string[], failures: readonly string[]): string {
  const names = [...order.filter((name) => blocks.has(name)), ...[...blocks.keys()].filter((name) => !order.includes(name))]
  const rows = names.flatMap((name) => {
    const { run, targets } = targetsOf(blocks.get(name)!)
    return targets.map((t) => [t.name, t.target, t.measured, t.met === undefined ? 'not measured' : t.met ? 'met' : '**MISSED**', run.replace(/^Run /, '')])
  })
  return [
    RESULTS_HEADER,
    '',
    '### Targets',
    '',
    ...(rows.length > 0 ? [table(['target', 'wanted', 'measured', '', 'run (UTC)'], rows)] : ['No section with targets has run yet.']),
    '',
    ...(failures.length > 0 ? ['### Sections that failed in this run', '', ...failures.map((failure) => `- ${failure.split('\n')[0]}`), ''] : []),
    ...names.flatMap((name) => [blocks.get(name)!, '']),
  ].join('\n')
}

/**
 * Put the blocks of this run into `file`'s results, keeping the blocks of sections that did not
 * run (or failed), rebuild the targets table (creating the file or the markers if needed), and
 * redraw each of `charts` whose section has a block. Returns the paths of the charts written.
 */
export function writeResults(
  file: string,
  fresh: ReadonlyMap<string, string>,
  order: readonly string[],
  failures: readonly string[],
  charts: readonly ReadmeChart[] = [],
): string[] {
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n'
  const start = current.indexOf(START)
  const end = current.indexOf(END)
  const found = start !== -1 && end > start
  const blocks = found ? sectionBlocks(current.slice(start, end)) : new Map<string, string>()
  for (const [name, block] of fresh) blocks.set(name, block)
  const results = `${START}\n${renderResults(blocks, order, failures).trim()}\n${END}`
  const next = found ? current.slice(0, start) + results + current.slice(end + END.length) : `${current.trimEnd()}\n\n${results}\n`
  writeFileSync(file, next)
  const written: string[] = []
  for (const chart of charts) {
    const block = blocks.get(chart.section)
    const svg = block === undefined ? undefined : chart.render(block)
    if (svg === undefined) continue
    const path = join(dirname(file), chart.file)
    writeFileSync(path, svg)
    written.push(path)
  }
  return written
}
