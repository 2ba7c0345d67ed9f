/**
 * Smoke test of the bench: a `bench:quick`-equivalent run with tiny durations and sizes goes
 * end to end (every section, every HTTP server) and writes well-formed markdown tables. No
 * timing is asserted: only that the run completes and its tables are complete.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { END, START } from '../../bench/lib/readme.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RUN_LIMIT_MS = 240_000 // the quick run includes the cluster section: about 70 s here, more on a loaded machine

/** Markdown tables of `text`: each a list of rows, each a list of trimmed cells. */
function tables(text: string): string[][][] {
  const found: string[][][] = []
  let current: string[][] | undefined
  for (const line of text.split('\n')) {
    if (line.startsWith('|')) {
      ;(current ??= []).push(
        line
          .slice(1, -1)
          .split('|')
          .map((cell) => cell.trim()),
      )
    } else if (current !== undefined) {
      found.push(current)
      current = undefined
    }
  }
  if (current !== undefined) found.push(current)
  return found
}

test('a tiny bench:quick run completes and writes complete tables', async (t) => {
  t.timeout(RUN_LIMIT_MS + 10_000)
  const dir = await mkdtemp(join(tmpdir(), 'csm-bench-smoke-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const out = join(dir, 'README.md')
  const args = [
    '--import',
    'tsx',
    'bench/run.ts',
    '--quick',
    '--duration',
    '0.1',
    '--warmup',
    '0.1',
    '--rounds',
    '1',
    '--cpu-ms',
    '5',
    '--cache-sizes',
    '500,1000',
    '--sessions',
    '1000',
    '--storages',
    'memory',
    '--storage-duration',
    '0.1',
    '--concurrency',
    '1,8',
    '--out',
    out,
  ]
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS)
  t.teardown(() => {
    clearTimeout(timer)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  t.is(code, 0, stderr)

  const written = await readFile(out, 'utf8')
  const block = written.slice(written.indexOf(START) + START.length, written.indexOf(END))
  t.true(written.includes(START) && written.includes(END), 'the results sit between the markers')
  t.true(stdout.includes(block.trim().split('\n')[0]!), 'stdout carries the same results')
  for (const heading of ['### Targets', '### HTTP', '### Micro', '### Memory', '### Storage write-through', '### Sessions of a user (principal index)'])
    t.true(block.includes(heading), heading)
  t.false(block.includes('Sections that failed'))

  const found = tables(block)
  t.true(found.length >= 6, `${found.length} tables`)
  for (const rows of found) {
    const width = rows[0]!.length
    t.true(rows.length >= 3, `a table has a header, a rule and rows: ${rows[0]!.join(' | ')}`)
    t.true(
      rows[1]!.every((cell) => /^-+:?$/.test(cell)),
      'the second row is the rule',
    )
    for (const row of rows) t.is(row.length, width, `row "${row.join(' | ')}" has ${width} cells`)
  }

  const [targets] = found
  for (const row of targets!.slice(2)) t.regex(row[3]!, /^(met|\*\*MISSED\*\*|not measured)$/, row[0])
  const http = found.find((rows) => rows[0]![0] === 'route — server')!
  const servers = new Set(http.slice(2).map((row) => row[0]!.split(' — ')[1]))
  t.true(servers.has('bare node:http') && servers.has('node:http + caching-session-manager (MemoryStorage)'))
  t.true(
    servers.has('express + express-session (MemoryStore)') &&
      servers.has('koa + koa-session (cookie store)') &&
      servers.has('fastify + @fastify/session (MemoryStore)'),
  )
  t.is(http.length - 2, servers.size * 3, 'every server answered every route')
  for (const row of http.slice(2)) t.regex(row[1]!, /^\d[\d ]*$/, `req/s of ${row[0]}`)
})
