import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'

// The CI variant of `npm run soak`: 30 seconds against MariaDB. The runner itself decides what a
// failure is (anything acknowledged missing, a destroyed session back, any failed request, a
// growing heap) and exits 1; this test runs it and checks its summary.

const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface SoakSummary {
  requests: number
  ok: number
  acknowledgedWrites: number
  hostile: number
  errors: Record<string, number>
  ledger: { keys: number; missing: number; resurrected: number }
  memory: { growthTrend: boolean }
}

mysqlTest('soak, 30 seconds against MariaDB: no failed request, zero acknowledged writes lost, no heap growth trend', async (t) => {
  t.timeout(120_000)
  const child = spawn(process.execPath, ['--import', 'tsx', 'soak/run.ts'], {
    cwd: ROOT,
    env: { ...process.env, SOAK_SECONDS: '30', SOAK_RATE: '200', SOAK_VISITORS: '1000', SOAK_CACHE_LIMIT: '250', MYSQL_URL },
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  const line = output.split('\n').find((l) => l.startsWith('SOAK_RESULT '))
  t.truthy(line, output)
  const summary = JSON.parse(line!.slice('SOAK_RESULT '.length)) as SoakSummary
  t.log(
    output
      .split('\n')
      .filter((l) => !l.startsWith('SOAK_RESULT '))
      .join('\n'),
  )
  t.is(code, 0, output)
  t.true(summary.requests > 0)
  t.is(summary.ok, summary.requests)
  t.deepEqual(summary.errors, {})
  t.true(summary.hostile > 0)
  t.true(summary.ledger.keys > 0)
  t.is(summary.ledger.missing, 0)
  t.is(summary.ledger.resurrected, 0)
  t.false(summary.memory.growthTrend)
})
