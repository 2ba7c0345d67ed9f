/**
 * `npm run bench` / `npm run bench:quick`: runs the sections (HTTP, micro, memory, storage
 * write-through), prints the results as markdown, and rewrites the results block of
 * bench/README.md (or `--out FILE`; `--out -` prints only). See bench/README.md.
 */
import { cpus, loadavg, totalmem } from 'node:os'
import { runHttp } from './http/run.js'
import { parseOptions, type BenchOptions, type SectionName } from './lib/options.js'
import { writeResults } from './lib/readme.js'
import type { SectionReport } from './lib/report.js'
import { table } from './lib/table.js'
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

async function main(): Promise<number> {
  let options: BenchOptions
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err))
    return 2
  }
  const started = new Date()
  const loadBefore = load()
  const reports: SectionReport[] = []
  const failures: string[] = []
  for (const name of options.sections) {
    const began = performance.now()
    console.error(`[bench] ${name}…`)
    try {
      const report = await runSectionNamed(name, options)
      reports.push(report)
      console.error(`[bench] ${name} done in ${((performance.now() - began) / 1000).toFixed(0)} s`)
    } catch (err) {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err)
      failures.push(`${name}: ${message}`)
      console.error(`[bench] ${name} failed: ${message}`)
    }
  }
  const cpu = cpus()
  const targets = reports.flatMap((report) => report.targets)
  const lines = [
    `Run ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${commandLine()}\`${options.quick ? ' (quick: short cells, numbers are rough)' : ''}.`,
    `Node ${process.version}, ${process.platform}/${process.arch}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB. Load average before ${loadBefore}, after ${load()}: the machine is shared (other engineers run test suites on the same 2 cores), so absolute numbers move from run to run; the ratios, taken between runs made back to back in alternating order, are the point.`,
    '',
    '### Targets',
    '',
    table(
      ['target', 'wanted', 'measured', ''],
      targets.map((t) => [t.name, t.target, t.measured, t.met === undefined ? 'not measured' : t.met ? 'met' : '**MISSED**']),
    ),
    '',
    ...reports.flatMap((report) => [`### ${report.title}`, '', report.method, '', report.body, '']),
    ...(failures.length > 0 ? ['### Sections that failed', '', ...failures.map((failure) => `- ${failure.split('\n')[0]}`), ''] : []),
  ]
  const results = lines.join('\n')
  console.log(results)
  if (options.out !== '-') {
    writeResults(options.out, results)
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
