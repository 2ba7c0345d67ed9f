/**
 * `npm run bench` / `npm run bench:quick`: runs the sections (HTTP, micro, memory, storage
 * write-through, cluster), prints the results as markdown, and rewrites the blocks of the
 * sections it ran in bench/README.md (or `--out FILE`; `--out -` prints only). See bench/README.md.
 */
import { cpus, loadavg, totalmem } from 'node:os'
import { runCluster } from './cluster/run.js'
import { runHttp } from './http/run.js'
import { parseOptions, SECTIONS, type BenchOptions, type SectionName } from './lib/options.js'
import { renderResults, sectionBlock, writeResults } from './lib/readme.js'
import type { SectionReport } from './lib/report.js'
import { runMemory } from './memory/run.js'
import { runMicro } from './micro/run.js'
import { runStorage } from './storage/run.js'

function runSectionNamed(name: SectionName, options: BenchOptions): Promise<SectionReport> {
  switch (name) {
    case 'http':
      return runHttp(options.http)
    case 'micro':
      return runMicro(options.micro)
    case 'memory':
      return runMemory(options.memory)
    case 'storage':
      return runStorage(options.storage)
    case 'cluster':
      return runCluster(options.cluster)
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
  for (const name of options.sections) {
    const began = performance.now()
    const started = new Date()
    const loadBefore = load()
    console.error(`[bench] ${name}…`)
    try {
      const report = await runSectionNamed(name, options)
      const provenance = `Run ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${commandLine()}\`${options.quick ? ' (quick: short cells, numbers are rough)' : ''}. ${machine()}. Load average before ${loadBefore}, after ${load()}.`
      blocks.set(name, sectionBlock(name, report, provenance))
      console.error(`[bench] ${name} done in ${((performance.now() - began) / 1000).toFixed(0)} s`)
    } catch (err) {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err)
      failures.push(`${name}: ${message}`)
      console.error(`[bench] ${name} failed: ${message}`)
    }
  }
  console.log(renderResults(blocks, SECTIONS, failures))
  if (options.out !== '-') {
    writeResults(options.out, blocks, SECTIONS, failures)
    console.error(`[bench] results written to ${options.out}`)
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
