import test, { type ExecutionContext } from 'ava'
import { setTimeout as sleep } from 'node:timers/promises'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { Storage } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { startApp, type App } from '../helpers/app-server.js'
import { TEST_KEY } from '../helpers/manager.js'

// Deadlines come from the configuration in force, on every load and every cache hit. Before,
// a stored idle deadline was trusted as it was (one written a year ahead by a process with a
// skewed clock kept the session alive for a year of idleness), and `absoluteMaxAge` applied
// only to sessions created after it was set: adding or lowering it left older sessions alone.

const SECOND = 1000
const HOUR = 3_600_000
const YEAR = 365 * 24 * HOUR

interface Clock {
  now: number
}

/** One process of the app on `storage`, with the shared `clock`: `/login` writes a user, `/whoami` reads it. */
function app(t: ExecutionContext, storage: Storage, clock: Clock, options: SessionManagerOptions = {}): Promise<App> {
  const manager = new SessionManager({
    storage,
    identities: [new CookieIdentity({ keys: [TEST_KEY] })],
    now: () => clock.now,
    ...options,
  })
  return startApp(t, manager, {
    '/login': async (session) => {
      await session.set('user', 'ada')
      return { id: session.id }
    },
    '/whoami': (session) => ({ id: session.id, isNew: session.isNew, user: session.get('user') ?? null, expiresAt: session.expiresAt ?? null }),
  })
}

/** Wait, bounded, until `done()` resolves true; true if it did. */
async function eventually(done: () => Promise<boolean>, withinMs = 10_000): Promise<boolean> {
  const until = Date.now() + withinMs
  while (!(await done())) {
    if (Date.now() > until) return false
    await sleep(20)
  }
  return true
}

function setup(): { clock: Clock; storage: MemoryStorage } {
  const clock = { now: Date.now() }
  return { clock, storage: new MemoryStorage({ now: () => clock.now }) }
}

test('an idle deadline stored a year ahead is served only until the last access plus maxAge, and written back', async (t) => {
  const { clock, storage } = setup()
  const maxAge = 3600
  const first = await app(t, storage, clock, { maxAge })
  const user = first.client()
  const id = (await user.get('/login')).body['id'] as string
  const cookie = user.jar.header()
  // A process whose clock ran a year ahead touched the record.
  const stored = (await storage.get(id))!
  await storage.set(id, { data: stored.data, createdAt: stored.createdAt, expiresAt: clock.now + YEAR, issuer: stored.issuer })

  // Another process (or this one restarted) loads it.
  const second = await app(t, storage, clock, { maxAge })
  const client = second.client()
  const loaded = await client.get('/whoami', cookie)
  t.is(loaded.body['user'], 'ada', 'the session itself is fine')
  t.is(loaded.body['expiresAt'], clock.now + maxAge * SECOND, 'the deadline this request sees is within maxAge')
  t.true(
    await eventually(async () => (await storage.get(id))?.expiresAt === clock.now + maxAge * SECOND),
    'the clamped deadline is written back to the storage',
  )
  t.true(
    loaded.setCookie.some((line) => line.startsWith('sid=')),
    'the cookie is re-issued with the clamped deadline',
  )

  // Idle for maxAge: dead, in the process that cached it and in a fresh one.
  clock.now += maxAge * SECOND
  const cached = await client.get('/whoami', cookie)
  t.true(cached.body['isNew'], 'the cached copy is not served past last access plus maxAge')
  t.is(cached.body['user'], null)
  const third = await app(t, storage, clock, { maxAge })
  const fresh = await third.client().get('/whoami', cookie)
  t.true(fresh.body['isNew'], 'nor is the stored one')
})

test('a lower maxAge in the new configuration brings a stored idle deadline back on load', async (t) => {
  const { clock, storage } = setup()
  const first = await app(t, storage, clock, { maxAge: 14 * 24 * 3600 })
  const user = first.client()
  await user.get('/login')
  const cookie = user.jar.header()
  const second = await app(t, storage, clock, { maxAge: 600 })
  const loaded = await second.client().get('/whoami', cookie)
  t.is(loaded.body['user'], 'ada')
  t.is(loaded.body['expiresAt'], clock.now + 600 * SECOND)
  clock.now += 600 * SECOND
  t.true((await second.client().get('/whoami', cookie)).body['isNew'])
})

test('absoluteMaxAge added after a session was created ends it once the session is older, after a restart', async (t) => {
  const { clock, storage } = setup()
  const first = await app(t, storage, clock)
  const user = first.client()
  await user.get('/login')
  const cookie = user.jar.header()
  t.is((await user.get('/whoami')).body['user'], 'ada')

  clock.now += 2 * HOUR
  const restarted = await app(t, storage, clock, { absoluteMaxAge: 3600 })
  const answer = await restarted.client().get('/whoami', cookie)
  t.true(answer.body['isNew'], 'a session two hours old is refused under a one-hour absoluteMaxAge')
  t.is(answer.body['user'], null)
})

test('absoluteMaxAge lowered after a session was created applies from its creation, on the cache hit too', async (t) => {
  const { clock, storage } = setup()
  const created = clock.now
  const first = await app(t, storage, clock, { absoluteMaxAge: 24 * 3600 })
  const user = first.client()
  await user.get('/login')
  const cookie = user.jar.header()

  clock.now += 30 * 60 * SECOND
  const restarted = await app(t, storage, clock, { absoluteMaxAge: 3600 })
  const client = restarted.client()
  const young = await client.get('/whoami', cookie)
  t.is(young.body['user'], 'ada', 'a session younger than the new absoluteMaxAge is served')
  t.is(young.body['expiresAt'], created + HOUR, 'its idle deadline is never past creation plus the new absoluteMaxAge')
  clock.now = created + HOUR - 1
  t.is((await client.get('/whoami', cookie)).body['user'], 'ada', 'served from the cache until then')
  clock.now = created + HOUR
  t.true((await client.get('/whoami', cookie)).body['isNew'], 'and not a moment after')
})

test('a creation time written in the future counts as now for absoluteMaxAge', async (t) => {
  const { clock, storage } = setup()
  const first = await app(t, storage, clock)
  const user = first.client()
  const id = (await user.get('/login')).body['id'] as string
  const cookie = user.jar.header()
  const stored = (await storage.get(id))!
  await storage.set(id, { data: stored.data, createdAt: clock.now + YEAR, expiresAt: stored.expiresAt, issuer: stored.issuer })

  const restarted = await app(t, storage, clock, { absoluteMaxAge: 3600 })
  const client = restarted.client()
  const loaded = await client.get('/whoami', cookie)
  t.is(loaded.body['user'], 'ada')
  t.is(loaded.body['expiresAt'], clock.now + HOUR)
  clock.now += HOUR
  t.true((await client.get('/whoami', cookie)).body['isNew'])
})
