import test from 'ava'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// An 'error' listener that throws cannot stall the write queue: the failed writes' promises are
// rejected, the other sessions of the same batch settle, flush() and close() resolve, and no
// rejection goes unhandled (which would end the process under Node's default
// --unhandled-rejections=throw). The manager runs in a child process so that an unhandled
// rejection there cannot disturb the test runner.

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const FIXTURE = fileURLToPath(new URL('./fixtures/throwing-listener.ts', import.meta.url))

test('a throwing error listener does not leave writes unsettled, close() hanging, or a rejection unhandled', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', FIXTURE], { cwd: ROOT, timeout: 60_000 })
  const report = JSON.parse(stdout.trim()) as { settled: boolean[]; closed: boolean; unhandled: number }
  t.deepEqual(report, { settled: [true, true], closed: true, unhandled: 0 })
})
