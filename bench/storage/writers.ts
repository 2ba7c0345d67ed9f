/**
 * The write-through measuring loop, shared by the storage and principals sections: N sessions
 * each write in a loop until the clock runs out, awaiting every write (its promise settles when
 * the storage acknowledged it), and the acknowledged writes are counted.
 */
import type { SessionManager } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import { fakeRequest, FakeResponse } from '../lib/fake-http.js'

/** What one run of {@link measureWrites} counted. */
export interface WriteRun {
  /** Acknowledged writes per second. */
  rate: number
  /** Storage calls (a batch counts once) per acknowledged write. */
  callsPerSet: number
  /** Writes that failed (should be 0). */
  failures: number
}

/**
 * `count` new sessions of `manager`, each written once with `first(i)` (its first write, which
 * creates the record) and acknowledged before this resolves.
 */
export async function startSessions<D extends object>(
  manager: SessionManager<D>,
  count: number,
  first: (session: Session<D>, i: number) => Promise<void>,
): Promise<Session<D>[]> {
  const sessions: Session<D>[] = []
  const created: Promise<void>[] = []
  for (let i = 0; i < count; i++) {
    const session = await manager.load(fakeRequest(undefined, '/write'), new FakeResponse())
    created.push(first(session, i))
    sessions.push(session)
  }
  await Promise.all(created)
  return sessions
}

/**
 * Every session of `sessions` calls `write(session, n)` (n = 1, 2, …) in a loop for `seconds`,
 * one write in flight each; counts the writes acknowledged before the deadline and the storage
 * calls `manager` made meanwhile.
 */
export async function measureWrites<D extends object>(
  manager: SessionManager<D>,
  sessions: readonly Session<D>[],
  seconds: number,
  write: (session: Session<D>, n: number) => Promise<void>,
): Promise<WriteRun> {
  const callsBefore = manager.stats().storageCalls
  let acknowledged = 0
  let failures = 0
  const deadline = performance.now() + seconds * 1000
  // The clock, not a timer, ends the run: with a storage that answers in microtasks (memory) a
  // timer would never get its turn.
  const writer = async (session: Session<D>): Promise<void> => {
    let n = 0
    while (performance.now() < deadline) {
      try {
        await write(session, ++n)
        if (performance.now() <= deadline) acknowledged++
      } catch {
        failures++
      }
    }
  }
  await Promise.all(sessions.map(writer))
  const calls = manager.stats().storageCalls - callsBefore
  return { rate: acknowledged / seconds, callsPerSet: calls / Math.max(acknowledged, 1), failures }
}
