import test from 'ava'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// Review finding (src/write-queue.ts #retryOrFail, src/session-manager.ts #writeFailed): the
// manager emits 'error' from inside the write queue's failure path, before the failed writes'
// promises are rejected and before the other sessions of the same batch are settled. An
// 'error' listener that throws therefore leaves those promises pending forever, leaves the
// other lanes of the batch "in flight" so flush() and close() never resolve, and turns into an
// unhandled rejection (which ends the process under Node's default --unhandled-rejections=throw).

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const FIXTURE = fileURLToPath(new URL('./fixtures/throwing-listener.ts', import.meta.url))

test('a throwing error listener does not leave writes unsettled, close() hanging, or a rejection unhandled', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', FIXTURE], { cwd: ROOT, timeout: 60_000 })
  const report = JSON.parse(stdout.trim()) as { settled: boolean[]; closed: boolean; unhandled: number }
  t.deepEqual(report, { settled: [true, true], closed: true, unhandled: 0 })
})
