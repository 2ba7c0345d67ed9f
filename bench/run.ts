/**
 * `npm run bench` / `npm run bench:quick`: runs the sections (HTTP, micro, memory, storage
 * write-through, the sessions of a user, cluster) with a line of progress per cell on stderr, prints the results as
 * markdown, rewrites the blocks of the sections it ran in bench/README.md (or `--out FILE`;
 * `--out -` prints only) and redraws the charts next to it (`--redraw`: only that, from the
 * blocks already there). See bench/README.md.
 */
import { cpus, loadavg, totalmem } from 'node:os'
import { planCluster, runCluster } from './cluster/run.js'
import { HTTP_CHART } from './http/chart.js'
import { planHttp, runHttp } from './http/run.js'
import { parseOptions, SECTIONS, type BenchOptions, type SectionName } from './lib/options.js'
import { BenchProgress, formatDuration, type CellProgress, type SectionPlan } from './lib/progress.js'
import { renderResults, sectionBlock, writeResults } from './lib/readme.js'
import type { SectionReport } from './lib/report.js'
import { planMemory, runMemory } from './memory/run.js'
import { planMicro, runMicro } from './micro/run.js'
import { planPrincipals, runPrincipals } from './principals/run.js'
import { planStorage, runStorage } from './storage/run.js'

function runSectionNamed(name: SectionName, options: BenchOptions, progress: CellProgress): Promise<SectionReport> {
  switch (name) {
    case 'http':
      return runHttp(options.http, progress)
    case 'micro':
      return runMicro(options.micro, progress)
    case 'memory':
      return runMemory(options.memory, progress)
    case 'storage':
      return runStorage(options.storage, progress)
    case 'principals':
      return runPrincipals(options.principals, progress)
    case 'cluster':
      return runCluster(options.cluster, progress)
  }
}

function planOf(name: SectionName, options: BenchOptions): SectionPlan {
  switch (name) {
    case 'http':
      return planHttp(options.http)
    case 'micro':
      return planMicro(options.micro)
    case 'memory':
      return planMemory(options.memory)
    case 'storage':
      return planStorage(options.storage)
    case 'principals':
      return planPrincipals(options.principals)
    case 'cluster':
      return planCluster(options.cluster)
  }
}

/** How this run was started, as a command someone can paste. */
function commandLine(): string {
  const argv = process.argv.slice(2)
  const script = process.env['npm_lifecycle_event']
  if (script !== undefined && script.startsWith('bench')) {
    // Leave out what the npm script itself passes (`--quick` for bench:quick).
    const own = (process.env['npm_lifecycle_script'] ?? '').split(/\s+/).slice(2)
    const extra = own.every((arg, i) => argv[i] === arg) ? argv.slice(own.length) : argv
    return `npm run ${script}${extra.length === 0 ? '' : ` -- ${extra.join(' ')}`}`
  }
  return `npx tsx bench/run.ts${argv.length === 0 ? '' : ` ${argv.join(' ')}`}`
}

function load(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ')
}

/** Node, platform and CPU, for each section's first line. */
function machine(): string {
  const cpu = cpus()
  return `Node ${process.version}, ${process.platform}/${process.arch}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB`
}

async function main(): Promise<number> {
  let options: BenchOptions
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err))
    return 2
  }
  const blocks = new Map<string, string>()
  const failures: string[] = []
  const progress = new BenchProgress(new Map(options.sections.map((name) => [name, planOf(name, options)])))
  if (options.sections.length > 0) {
    console.error(`[bench] ${progress.total} cells, ${formatDuration(progress.plannedSeconds)} of measurement planned`)
  }
  for (const name of options.sections) {
    const began = performance.now()
    const started = new Date()
    const loadBefore = load()
    console.error(`[bench] ${name}…`)
    try {
      const report = await runSectionNamed(name, options, progress.section(name))
      const provenance = `Run ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${commandLine()}\`${options.quick ? ' (quick: short cells, numbers are rough)' : ''}. ${machine()}. Load average before ${loadBefore}, after ${load()}.`
      blocks.set(name, sectionBlock(name, report, provenance))
      console.error(`[bench] ${name} done in ${((performance.now() - began) / 1000).toFixed(0)} s`)
    } catch (err) {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err)
      failures.push(`${name}: ${message}`)
      console.error(`[bench] ${name} failed: ${message}`)
    }
    progress.finish(name)
  }
  console.log(renderResults(blocks, SECTIONS, failures))
  if (options.out !== '-') {
    const charts = writeResults(options.out, blocks, SECTIONS, failures, [HTTP_CHART])
    console.error(`[bench] results written to ${options.out}${charts.length > 0 ? `, chart to ${charts.join(', ')}` : ''}`)
  }
  return failures.length > 0 ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
