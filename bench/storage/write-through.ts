/**
 * Write-through child: acknowledged `set`s per second on one storage, with 1, 64 and 1024
 * sessions writing at once, batching on (the default) next to one storage call per write
 * (`batching: false`). Each cell uses a new manager on the same storage and new sessions;
 * within a round the two modes alternate, their order flipping each round.
 *
 * Arguments: storage name, seconds per cell, rounds, concurrency levels (comma-separated).
 */
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Storage } from '../../src/types.js'
import { reportSection } from '../lib/section.js'
import { BACKENDS, openBackend, type BackendName } from './backends.js'
import { measureWrites, startSessions } from './writers.js'

/** One measured cell. */
export interface WriteCell {
  storage: BackendName
  concurrency: number
  batching: boolean
  round: number
  /** Acknowledged sets per second. */
  rate: number
  /** Storage calls (a batch counts once) per acknowledged set. */
  callsPerSet: number
  /** Sets that failed (should be 0). */
  failures: number
}

interface BenchData {
  n: number
}

async function measure(storage: Storage, name: BackendName, concurrency: number, batching: boolean, seconds: number, round: number): Promise<WriteCell> {
  const manager = new SessionManager<BenchData>({ storage, batching, identities: [new CookieIdentity()] })
  const sessions = await startSessions(manager, concurrency, (session) => session.set('n', 0))
  const run = await measureWrites(manager, sessions, seconds, (session, n) => session.set('n', n))
  return { storage: name, concurrency, batching, round, ...run }
}

reportSection(async (): Promise<WriteCell[]> => {
  const name = process.argv[2] as BackendName
  if (!BACKENDS.includes(name)) throw new Error(`unknown storage ${String(name)}; one of ${BACKENDS.join(', ')}`)
  const seconds = Number(process.argv[3] ?? 3)
  const rounds = Number(process.argv[4] ?? 3)
  const levels = (process.argv[5] ?? '1,64,1024').split(',').map(Number)
  const backend = await openBackend(name)
  const cells: WriteCell[] = []
  try {
    // A first small run warms up the storage (connections, table, JIT) and is not counted.
    await measure(backend.storage, name, 8, true, Math.min(seconds, 0.5), -1)
    for (let round = 0; round < rounds; round++) {
      for (const concurrency of levels) {
        const modes = round % 2 === 0 ? [true, false] : [false, true]
        for (const batching of modes) cells.push(await measure(backend.storage, name, concurrency, batching, seconds, round))
      }
    }
  } finally {
    await backend.dispose()
  }
  return cells
})
