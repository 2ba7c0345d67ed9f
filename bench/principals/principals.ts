/**
 * Principals child, on one storage: seeds N sessions (10 per user) straight through the
 * storage, times `manager.sessionsOf(user)` and `manager.revokeSessionsOf(user)` one call at a
 * time, then measures what the principal index costs a write: acknowledged `set`s per second of
 * C sessions with `principal: 'userId'` next to the same manager without it, the two modes
 * alternating within a round (their order flipping each round). Two kinds of write: a data key
 * (the principal stays as it is: the common write) and the principal itself, changed by every
 * write (the index entry moves each time: the worst case).
 *
 * Arguments: storage name, sessions to seed, seconds per cell, rounds, concurrency.
 */
import { CookieIdentity } from '../../identities/cookie.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import type { SessionRecordInput } from '../../src/kit/contract.js'
import type { Storage } from '../../src/types.js'
import { reportSection } from '../lib/section.js'
import { BACKENDS, openBackend, type BackendName } from '../storage/backends.js'
import { measureWrites, startSessions, type WriteRun } from '../storage/writers.js'

/** Sessions each seeded user has (run.ts says so in its method). */
const SESSIONS_PER_USER = 10
/** Users whose `sessionsOf` is timed. */
const LOOKUPS = 200
/** Users whose sessions `revokeSessionsOf` ends, each timed. */
const REVOKES = 100
/** Operations per seeding batch. */
const SEED_BATCH = 500

/** What a timed write does: a data key, or the principal itself. */
export type WriteKind = 'data' | 'principal'

/** One measured write cell. */
export interface IndexCell extends WriteRun {
  kind: WriteKind
  indexed: boolean
  round: number
}

/** Everything one storage's child measured. */
export interface PrincipalsResult {
  storage: BackendName
  seeded: number
  seedSeconds: number
  /** `sessionsOf` latencies, ms, one per call. */
  lookupMs: number[]
  /** Sessions each `sessionsOf` listed (should all be {@link SESSIONS_PER_USER}). */
  listed: number[]
  /** `revokeSessionsOf` latencies, ms, one per call. */
  revokeMs: number[]
  /** Sessions each `revokeSessionsOf` ended. */
  revoked: number[]
  concurrency: number
  cells: IndexCell[]
}

interface BenchData {
  userId?: string
  n?: number
}

const userOf = (i: number): string => `user-${i}`

/** Write `sessions` records, {@link SESSIONS_PER_USER} per user, with their principal, in batches. */
async function seed(storage: Storage, sessions: number): Promise<void> {
  const now = Date.now()
  for (let start = 0; start < sessions; start += SEED_BATCH) {
    const ops: { type: 'set'; id: string; record: SessionRecordInput }[] = []
    for (let i = start; i < Math.min(sessions, start + SEED_BATCH); i++) {
      const userId = userOf(Math.floor(i / SESSIONS_PER_USER))
      ops.push({
        type: 'set',
        id: generateId(),
        record: { data: { userId, n: 0 }, createdAt: now - sessions + i, expiresAt: now + 86_400_000, principal: userId },
      })
    }
    if (storage.batch !== undefined) {
      const outcomes = await storage.batch(ops)
      const failed = outcomes.find((outcome) => outcome !== true)
      if (failed !== undefined) throw new Error(`seeding failed: ${String(failed)}`)
    } else {
      await Promise.all(ops.map((op) => storage.set(op.id, op.record)))
    }
  }
}

/** `count` distinct user numbers below `users`, in random order. */
function pick(users: number, count: number): number[] {
  const chosen = new Set<number>()
  while (chosen.size < Math.min(count, users)) chosen.add(Math.floor(Math.random() * users))
  return [...chosen]
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const began = performance.now()
  const result = await work()
  return [result, performance.now() - began]
}

async function measure(storage: Storage, kind: WriteKind, indexed: boolean, concurrency: number, seconds: number, round: number): Promise<IndexCell> {
  const identities = [new CookieIdentity()]
  const manager = indexed ? new SessionManager<BenchData>({ storage, identities, principal: 'userId' }) : new SessionManager<BenchData>({ storage, identities })
  const tag = `${kind}-${indexed ? 'i' : 'p'}-${round}`
  const sessions = await startSessions(manager, concurrency, (session, i) => session.set('userId', `${tag}-${i}`))
  const ids = new Map(sessions.map((session, i) => [session, `${tag}-${i}`]))
  const run = await measureWrites(manager, sessions, seconds, (session, n) =>
    kind === 'data' ? session.set('n', n) : session.set('userId', `${ids.get(session)!}-${n % 2}`),
  )
  return { kind, indexed, round, ...run }
}

reportSection(async (): Promise<PrincipalsResult> => {
  const name = process.argv[2] as BackendName
  if (!BACKENDS.includes(name)) throw new Error(`unknown storage ${String(name)}; one of ${BACKENDS.join(', ')}`)
  const sessions = Number(process.argv[3] ?? 100_000)
  const seconds = Number(process.argv[4] ?? 3)
  const rounds = Number(process.argv[5] ?? 3)
  const concurrency = Number(process.argv[6] ?? 1024)
  const users = Math.ceil(sessions / SESSIONS_PER_USER)
  const backend = await openBackend(name)
  try {
    const storage = backend.storage
    const seedStart = performance.now()
    await seed(storage, sessions)
    const seedSeconds = (performance.now() - seedStart) / 1000

    const manager = new SessionManager<BenchData>({ storage, identities: [new CookieIdentity()], principal: 'userId' })
    // A few unmeasured calls warm up the connections and the JIT.
    for (const user of pick(users, 10)) await manager.sessionsOf(userOf(user))
    const lookupMs: number[] = []
    const listed: number[] = []
    for (const user of pick(users, LOOKUPS)) {
      const [found, ms] = await timed(() => manager.sessionsOf(userOf(user)))
      lookupMs.push(ms)
      listed.push(found.length)
    }
    const revokeMs: number[] = []
    const revoked: number[] = []
    for (const user of pick(users, REVOKES)) {
      const [ended, ms] = await timed(() => manager.revokeSessionsOf(userOf(user)))
      revokeMs.push(ms)
      revoked.push(ended)
    }

    // A first small run warms up the write path and is not counted.
    await measure(storage, 'data', true, 8, Math.min(seconds, 0.5), -1)
    const cells: IndexCell[] = []
    for (let round = 0; round < rounds; round++) {
      for (const kind of ['data', 'principal'] as const) {
        const modes = round % 2 === 0 ? [true, false] : [false, true]
        for (const indexed of modes) cells.push(await measure(storage, kind, indexed, concurrency, seconds, round))
      }
    }
    return { storage: name, seeded: sessions, seedSeconds, lookupMs, listed, revokeMs, revoked, concurrency, cells }
  } finally {
    await backend.dispose()
  }
})
