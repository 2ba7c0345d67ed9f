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
import type { Session } from '../../src/session.js'
import type { Storage } from '../../src/types.js'
import { reportSection } from '../lib/section.js'
import { fakeRequest, FakeResponse } from '../lib/fake-http.js'
import { BACKENDS, openBackend, type BackendName } from './backends.js'

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

async function startSessions(manager: SessionManager<BenchData>, count: number): Promise<Session<BenchData>[]> {
  const sessions: Session<BenchData>[] = []
  const created: Promise<void>[] = []
  for (let i = 0; i < count; i++) {
    const session = await manager.load(fakeRequest(undefined, '/write'), new FakeResponse())
    created.push(session.set('n', 0))
    sessions.push(session)
  }
  await Promise.all(created)
  return sessions
}

async function measure(storage: Storage, name: BackendName, concurrency: number, batching: boolean, seconds: number, round: number): Promise<WriteCell> {
  const manager = new SessionManager<BenchData>({ storage, batching, identities: [new CookieIdentity()] })
  const sessions = await startSessions(manager, concurrency)
  const callsBefore = manager.stats().storageCalls
  let acknowledged = 0
  let failures = 0
  const deadline = performance.now() + seconds * 1000
  // The clock, not a timer, ends the run: with a storage that answers in microtasks (memory) a
  // timer would never get its turn.
  const writer = async (session: Session<BenchData>): Promise<void> => {
    let n = 0
    while (performance.now() < deadline) {
      try {
        await session.set('n', ++n)
        if (performance.now() <= deadline) acknowledged++
      } catch {
        failures++
      }
    }
  }
  await Promise.all(sessions.map(writer))
  const calls = manager.stats().storageCalls - callsBefore
  return { storage: name, concurrency, batching, round, rate: acknowledged / seconds, callsPerSet: calls / Math.max(acknowledged, 1), failures }
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
