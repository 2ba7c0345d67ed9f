import test, { type ExecutionContext } from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionError, isSessionError } from '../../src/errors.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import { MemoryStorage } from '../../storages/memory.js'
import { AckLedger } from '../helpers/ack-ledger.js'
import { Browser, fakeRequest, FakeResponse, seedSession } from '../helpers/fake-http.js'
import { FaultStorage } from '../helpers/storage-double.js'

// Write-through under storage faults: down at start, down mid-traffic, slow, failing part of a
// batch, flapping. Whatever happens, a write settles (acknowledged or SESSION_STORAGE_FAILED /
// SESSION_QUEUE_FULL), a cache miss during an outage is SESSION_STORAGE_UNAVAILABLE and never a
// fresh session, and once the storage is back every acknowledged write is in it.

const RETRIES = 2

function setup(options: SessionManagerOptions = {}, batch = true) {
  const storage = new FaultStorage(new MemoryStorage(), { batch })
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })], writeRetries: RETRIES, retryDelay: 1, ...options })
  const errors: Error[] = []
  manager.on('error', (error) => errors.push(error))
  return { storage, manager, errors }
}

/** Each browser gets a stored session holding `n = 0`. */
async function browsers(manager: SessionManager, count: number, ledger?: AckLedger): Promise<Browser[]> {
  const list = Array.from({ length: count }, () => new Browser())
  // One at a time, so setting up never meets a queue bound under test.
  for (const browser of list) {
    await browser.request(manager, async (session) => {
      await session.set('n', 0)
      ledger?.acknowledged(session.id, 'n', 0)
    })
  }
  return list
}

function codeOf(error: unknown): string {
  return isSessionError(error) ? error.code : `not a SessionError: ${String(error)}`
}

async function expectNoLoss(t: ExecutionContext, ledger: AckLedger, storage: FaultStorage): Promise<void> {
  const report = await ledger.verify(storage.inner)
  t.true(report.keys > 0)
  t.deepEqual(report.missing, [], 'every acknowledged write is in storage')
  t.deepEqual(report.resurrected, [])
}

test('storage down at start: the first write of a new session fails with SESSION_STORAGE_FAILED after the bounded retries', async (t) => {
  const { storage, manager, errors } = setup({}, false)
  storage.down()
  const browser = new Browser()
  const error = await t.throwsAsync(
    browser.request(manager, (session) => session.set('user', 'ada')),
    { instanceOf: SessionError },
  )
  t.is(error?.code, 'SESSION_STORAGE_FAILED')
  t.is(error?.status, 503)
  t.is(storage.calls.set, RETRIES + 1, 'one attempt plus the retries, then it gives up')
  t.is(manager.stats().failures, 1)
  t.true(
    errors.some((e) => isSessionError(e, 'SESSION_STORAGE_FAILED')),
    'reported on the error event',
  )
  t.is(manager.stats().pendingWrites, 0)
  // The session was never stored, so its cookie was taken back before the response went out: the
  // next request carries none and is served during the outage (nothing to read), after it the
  // session starts afresh.
  t.is(browser.value('sid'), undefined)
  const reads = storage.reads
  const { result: during } = await browser.request(manager, (session) => session)
  t.true(during.isNew)
  t.is(storage.reads, reads, 'no cookie, no storage read')
  storage.up()
  const { result } = await browser.request(manager, async (session) => {
    await session.set('user', 'bob')
    return session
  })
  t.true(result.isNew)
  t.is((await storage.inner.get(result.id))?.data['user'], 'bob')
})

test('storage down at start: requests that write nothing are served', async (t) => {
  const { storage, manager } = setup()
  storage.down()
  const session = await manager.load(fakeRequest(), new FakeResponse())
  t.true(session.isNew)
  t.is(session.get('user'), undefined)
  t.is(storage.reads, 0)
})

test('storage down mid-traffic: cached sessions keep being served, writes are refused, cache misses are 503, and nothing acknowledged is lost', async (t) => {
  const { storage, manager } = setup({ cacheLimit: 1000 })
  const ledger = new AckLedger()
  const cached = await browsers(manager, 40, ledger)
  // Sessions this process has never seen (another process made them): a cache miss each.
  const foreign = await Promise.all(Array.from({ length: 10 }, (_, i) => seedSession(storage.inner, { n: 1000 + i })))
  for (const [i, id] of foreign.entries()) ledger.acknowledged(id, 'n', 1000 + i)

  storage.down()
  const reads = storage.reads
  for (const browser of cached) {
    const { result } = await browser.request(manager, (session) => session.get('n'))
    t.is(result, 0, 'a cached session is read without the storage')
  }
  t.is(storage.reads, reads)

  const outcomes = await Promise.allSettled(cached.slice(0, 20).map((browser) => browser.request(manager, (session) => session.set('n', 1))))
  for (const outcome of outcomes) {
    t.is(outcome.status, 'rejected')
    if (outcome.status === 'rejected') t.is(codeOf(outcome.reason), 'SESSION_STORAGE_FAILED')
  }
  for (const id of foreign) {
    const error = await t.throwsAsync(manager.load(fakeRequest({ cookie: `sid=${id}` }), new FakeResponse()))
    t.is(codeOf(error), 'SESSION_STORAGE_UNAVAILABLE', 'a miss during the outage is a 503, never a fresh session')
  }
  // A session whose write was refused is no longer cached (storage does not hold the refused value).
  const refused = await Promise.allSettled([cached[0]!.request(manager, () => undefined)])
  t.is(refused[0].status, 'rejected')

  storage.up()
  for (const browser of cached) {
    const { result } = await browser.request(manager, (session) => session)
    t.false(result.isNew)
    t.is(result.get('n'), 0, 'the refused write is not shown; the acknowledged one is')
  }
  for (const [i, id] of foreign.entries()) {
    const session = await manager.load(fakeRequest({ cookie: `sid=${id}` }), new FakeResponse())
    t.is(session.get('n'), 1000 + i, 'the real session, not overwritten')
  }
  await expectNoLoss(t, ledger, storage)
})

test('a failed touch during an outage does not drop a healthy cached session', async (t) => {
  // Touches only move the deadline; the cached data still equals what storage holds.
  const { storage, manager } = setup({ maxAge: 600, touchAfter: 0 })
  const [browser] = await browsers(manager, 1)
  storage.down()
  for (let i = 0; i < 5; i++) {
    const { result } = await browser!.request(manager, (session) => session.get('n'))
    t.is(result, 0)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.true(storage.calls.touch > 0, 'touches were attempted and failed')
  t.is(manager.stats().cached, 1)
})

test('very slow storage: every write is acknowledged, in order, coalesced per session', async (t) => {
  const { storage, manager } = setup()
  const ledger = new AckLedger()
  const list = await browsers(manager, 20, ledger)
  storage.slow(20)
  const sessions = await Promise.all(list.map((browser) => browser.request(manager, (session) => session)))
  const writes = sessions.flatMap((visit) =>
    Array.from({ length: 25 }, (_, i) =>
      visit.result.set(i % 2 === 0 ? 'n' : 'm', i + 1).then(() => ledger.acknowledged(visit.result.id, i % 2 === 0 ? 'n' : 'm', i + 1)),
    ),
  )
  await Promise.all(writes)
  const stats = manager.stats()
  t.true(stats.coalesced > 0, 'writes that queued behind an in-flight one were folded together')
  t.true(stats.operations < 20 * 25, `${stats.operations} storage operations for 500 writes`)
  for (const visit of sessions) {
    const stored = await storage.inner.get(visit.result.id)
    t.deepEqual(stored?.data, { n: 25, m: 24 }, 'the last write of each key wins')
  }
  await expectNoLoss(t, ledger, storage)
})

test('bounded queue: past maxPendingWrites a write fails at once with SESSION_QUEUE_FULL, changing nothing; the accepted ones land', async (t) => {
  const { storage, manager } = setup({ maxPendingWrites: 10 })
  const ledger = new AckLedger()
  const list = await browsers(manager, 15, ledger)
  storage.hold()
  const sessions = (await Promise.all(list.map((browser) => browser.request(manager, (session) => session)))).map((visit) => visit.result)
  const accepted = sessions.slice(0, 10).map((session) => session.set('n', 1).then(() => ledger.acknowledged(session.id, 'n', 1)))
  t.is(manager.stats().pendingWrites, 10)
  for (const session of sessions.slice(10)) {
    const error = await t.throwsAsync(session.set('n', 1), { instanceOf: SessionError })
    t.is(error?.code, 'SESSION_QUEUE_FULL')
    t.is(error?.status, 503)
    t.is(session.get('n'), 0, 'the refused write did not change the cache')
  }
  // A new session cannot start either, and no cookie is issued for it.
  const res = new FakeResponse()
  const fresh = await manager.load(fakeRequest(), res)
  await t.throwsAsync(fresh.set('n', 1), { code: 'SESSION_QUEUE_FULL' } as never)
  t.is(res.getHeader('set-cookie'), undefined)
  t.is(manager.stats().pendingWrites, 10, 'the queue never grew past its bound')
  storage.release()
  await Promise.all(accepted)
  t.is(manager.stats().pendingWrites, 0)
  await expectNoLoss(t, ledger, storage)
  // Once drained, writes are accepted again.
  await sessions[14]!.set('n', 2)
})

test('bounded queue under a flood: pending writes never exceed the bound and every write settles', async (t) => {
  const { storage, manager } = setup({ maxPendingWrites: 50 })
  const ledger = new AckLedger()
  const list = await browsers(manager, 200, ledger)
  const sessions = (await Promise.all(list.map((browser) => browser.request(manager, (session) => session)))).map((visit) => visit.result)
  storage.slow(5)
  let peak = 0
  const outcomes = await Promise.allSettled(
    sessions.flatMap((session) =>
      [1, 2, 3].map((value) => {
        const write = session.set(`k${value}`, value).then(() => ledger.acknowledged(session.id, `k${value}`, value))
        peak = Math.max(peak, manager.stats().pendingWrites)
        return write
      }),
    ),
  )
  t.true(peak <= 50, `peak ${peak}`)
  const codes = new Set(outcomes.filter((o) => o.status === 'rejected').map((o) => codeOf(o.reason)))
  t.deepEqual([...codes], ['SESSION_QUEUE_FULL'])
  t.true(outcomes.some((o) => o.status === 'fulfilled'))
  await expectNoLoss(t, ledger, storage)
})

async function partialBatch(t: ExecutionContext, batch: boolean): Promise<void> {
  const { storage, manager } = setup({}, batch)
  const ledger = new AckLedger()
  const list = await browsers(manager, 30, ledger)
  const sessions = (await Promise.all(list.map((browser) => browser.request(manager, (session) => session)))).map((visit) => visit.result)
  const failing = new Set(sessions.filter((_, i) => i % 3 === 0).map((session) => session.id))
  storage.failOperations((op) => failing.has(op.id))
  const outcomes = await Promise.allSettled(sessions.map((session) => session.set('n', 1).then(() => ledger.acknowledged(session.id, 'n', 1))))
  outcomes.forEach((outcome, i) => {
    if (failing.has(sessions[i]!.id)) {
      t.is(outcome.status, 'rejected')
      if (outcome.status === 'rejected') t.is(codeOf(outcome.reason), 'SESSION_STORAGE_FAILED')
    } else {
      t.is(outcome.status, 'fulfilled')
    }
  })
  if (batch) t.true(storage.calls.batch > 0, 'the writes went out in batches')
  storage.up()
  await expectNoLoss(t, ledger, storage)
  // The failed sessions show what storage holds, not the refused value.
  const failed = sessions[0]!
  const reloaded = await list[0]!.request(manager, (session) => session.get('n'))
  t.is(reloaded.result, 0, `session ${failed.id.slice(0, 6)} shows its stored value`)
}

test('failing part of a batch: the failing sessions get SESSION_STORAGE_FAILED, the others are acknowledged and stored', async (t) => {
  await partialBatch(t, true)
})

test('failing some single writes (no batch entry point): same outcome', async (t) => {
  await partialBatch(t, false)
})

test('failing part of a batch once: the retries apply everything', async (t) => {
  const { storage, manager } = setup()
  const ledger = new AckLedger()
  const list = await browsers(manager, 30, ledger)
  const sessions = (await Promise.all(list.map((browser) => browser.request(manager, (session) => session)))).map((visit) => visit.result)
  storage.failOperations((op, attempt) => attempt === 1 && op.id.charCodeAt(0) % 2 === 0)
  await Promise.all(sessions.map((session) => session.set('n', 1).then(() => ledger.acknowledged(session.id, 'n', 1))))
  t.true(manager.stats().retries > 0 || storage.failures === 0)
  await expectNoLoss(t, ledger, storage)
})

test('writes retry within the bound: failing twice then succeeding is acknowledged; failing three times with two retries is not', async (t) => {
  const { storage, manager } = setup({}, false)
  const [browser] = await browsers(manager, 1)
  const { result: session } = await browser!.request(manager, (s) => s)
  storage.failOperations((op, attempt) => op.type === 'update' && op.key === 'a' && attempt <= RETRIES)
  await session.set('a', 1)
  t.is(storage.calls.update, RETRIES + 1)
  storage.failOperations((op) => op.type === 'update' && op.key === 'b')
  const error = await t.throwsAsync(session.set('b', 1), { instanceOf: SessionError })
  t.is(error?.code, 'SESSION_STORAGE_FAILED')
  t.is(storage.calls.update, 2 * (RETRIES + 1))
  t.regex(error.message, /3 attempts/)
})

test('flapping storage: every write settles, a session in storage is never replaced by a fresh one, and nothing acknowledged is lost', async (t) => {
  const { storage, manager } = setup({ writeRetries: 3, cacheLimit: 10 })
  const ledger = new AckLedger()
  const list = await browsers(manager, 30, ledger)
  const stored = new Set(ledger.ids())
  storage.flap(3, 2)
  const counts = { acknowledged: 0, refused: 0, unavailable: 0 }
  await Promise.all(
    list.map(async (browser, b) => {
      for (let value = 1; value <= 10; value++) {
        try {
          await browser.request(manager, async (session: Session) => {
            t.false(session.isNew && stored.has(browser.value('sid') ?? ''), 'a stored session is never replaced by a fresh one')
            await session.set('n', value)
            ledger.acknowledged(session.id, 'n', value)
            counts.acknowledged++
          })
        } catch (error) {
          const code = codeOf(error)
          if (code === 'SESSION_STORAGE_FAILED') counts.refused++
          else if (code === 'SESSION_STORAGE_UNAVAILABLE') counts.unavailable++
          else t.fail(`browser ${b}: unexpected ${code}`)
        }
      }
    }),
  )
  t.log(counts)
  t.true(counts.acknowledged > 0)
  t.is(manager.stats().pendingWrites, 0)
  storage.up()
  await expectNoLoss(t, ledger, storage)
  for (const browser of list) {
    const { result } = await browser.request(manager, (session) => session)
    t.false(result.isNew, 'every session survived the flapping')
  }
})

test('a refused write is not shown afterwards: the next request reloads what storage holds', async (t) => {
  const { storage, manager } = setup()
  const [browser] = await browsers(manager, 1)
  await browser!.request(manager, (session) => session.set('n', 1))
  storage.down()
  await t.throwsAsync(
    browser!.request(manager, (session) => session.set('n', 2)),
    { code: 'SESSION_STORAGE_FAILED' } as never,
  )
  storage.up()
  const { result } = await browser!.request(manager, (session) => session.get('n'))
  t.is(result, 1)
})

test('close() during an outage settles every pending write and rejects later ones with SESSION_CLOSED', async (t) => {
  const { storage, manager } = setup()
  const [browser] = await browsers(manager, 1)
  const { result: session } = await browser!.request(manager, (s) => s)
  storage.down()
  const pending = session.set('n', 5)
  const closing = manager.close()
  await t.throwsAsync(pending, { code: 'SESSION_STORAGE_FAILED' } as never)
  await closing
  await t.throwsAsync(session.set('n', 6), { code: 'SESSION_CLOSED' } as never)
  t.throws(() => manager.resolve(fakeRequest(), new FakeResponse()), { code: 'SESSION_CLOSED' } as never)
})
