import test from 'ava'
import {
  AbstractStorage,
  SessionError,
  isSessionError,
  type AbstractStorageOptions,
  type Batch,
  type SessionRecord,
  type StorageCapabilities,
  type StorageOperation,
} from '../../src/kit/index.js'

/** A backend that records what the base hands its hooks. */
class Recording extends AbstractStorage {
  readonly capabilities: StorageCapabilities = { batch: true, admin: false, shared: false }
  readonly seen: Array<{ hook: string; now: number; ops?: StorageOperation[] }> = []
  record: SessionRecord | undefined
  failure: Error | undefined
  gate: Promise<void> | undefined
  closedBackend = false

  constructor(options?: AbstractStorageOptions) {
    super('recording', options, 'Recording')
  }

  batch(operations: readonly StorageOperation[]) {
    return this.applyBatch(operations)
  }

  protected override async _get(_id: string, now: number): Promise<SessionRecord | undefined> {
    this.seen.push({ hook: 'get', now })
    if (this.failure !== undefined) throw this.failure
    return this.record
  }

  protected override async _write(batch: Batch, now: number): Promise<void> {
    this.seen.push({ hook: 'write', now, ops: [...batch.entries()].map(([, op]) => op) })
    await this.gate
    if (this.failure !== undefined) throw this.failure
    for (const [index, op] of batch.entries()) batch.done(index, op.type !== 'touch')
  }

  protected override _close(): void {
    this.closedBackend = true
  }
}

const HOUR = 3_600_000

test('the clock is read once per call and handed to the hook', async (t) => {
  let now = 1000
  const storage = new Recording({ now: () => now })
  await storage.get('a')
  now = 2000
  await storage.touch('a', 5000)
  t.deepEqual(
    storage.seen.map(({ hook, now }) => [hook, now]),
    [
      ['get', 1000],
      ['write', 2000],
    ],
  )
})

test('a record the hook returns is dropped when it is not live by the storage clock', async (t) => {
  let now = 1000
  const storage = new Recording({ now: () => now })
  storage.record = { data: {}, createdAt: 0, expiresAt: 2000, absoluteExpiresAt: 1500, version: 1 }
  t.truthy(await storage.get('a'))
  now = 1500
  t.is(await storage.get('a'), undefined)
})

test('a single write is a one-operation batch; the set is normalized (no null absolute deadline)', async (t) => {
  const storage = new Recording()
  await storage.set('a', { data: {}, createdAt: 1, expiresAt: 2, absoluteExpiresAt: null as never })
  t.false(await storage.touch('a', 3))
  const [set, touch] = storage.seen
  t.deepEqual(set!.ops, [{ type: 'set', id: 'a', record: { data: {}, createdAt: 1, expiresAt: 2 } }])
  t.deepEqual(touch!.ops, [{ type: 'touch', id: 'a', expiresAt: 3 }])
})

test('malformed operations never reach the hook', async (t) => {
  const storage = new Recording()
  const error = await t.throwsAsync(storage.update('a', 1 as never, 1, HOUR))
  t.true(isSessionError(error, 'SESSION_INVALID_OPERATION'))
  const outcomes = await storage.batch([
    { type: 'touch', id: 'a', expiresAt: 'x' as never },
    { type: 'touch', id: 'a', expiresAt: HOUR },
    { type: 'delete', id: 'b' },
  ])
  t.true(isSessionError(outcomes[0], 'SESSION_INVALID_OPERATION'))
  t.is(outcomes[1], outcomes[0], 'the later operation of the same session fails with it')
  t.is(outcomes[2], true)
  t.deepEqual(storage.seen.at(-1)!.ops, [{ type: 'delete', id: 'b' }])
  t.true(isSessionError(await t.throwsAsync(storage.batch('nope' as never)), 'SESSION_INVALID_OPERATION'))
})

test("a backend failure is SESSION_STORAGE_ERROR naming the storage and what failed, the backend's text only on the cause", async (t) => {
  const storage = new Recording()
  const cause = new Error('disk on fire')
  storage.failure = cause
  const read = await t.throwsAsync(storage.get('a'))
  t.true(isSessionError(read, 'SESSION_STORAGE_ERROR'))
  t.is(read.message, 'the recording storage could not read a session')
  t.is(read.cause, cause)
  const write = await t.throwsAsync(storage.set('a', { data: {}, createdAt: 1, expiresAt: 2 }))
  t.is(write.message, 'the recording storage could not write a session')
  const batch = await t.throwsAsync(storage.batch([{ type: 'delete', id: 'a' }]))
  t.is(batch.message, 'the recording storage could not write sessions')
})

test('close waits for calls in flight, then releases the backend once; later calls are SESSION_CLOSED', async (t) => {
  const storage = new Recording()
  let open!: () => void
  storage.gate = new Promise((resolve) => (open = resolve))
  const writing = storage.delete('a')
  const closing = storage.close()
  t.is(storage.close(), closing, 'idempotent')
  await new Promise((resolve) => setImmediate(resolve))
  t.false(storage.closedBackend, 'not while a write is in flight')
  open()
  await writing
  await closing
  t.true(storage.closedBackend)
  t.true(isSessionError(await t.throwsAsync(storage.get('a')), 'SESSION_CLOSED'))
})

test('the operators side is refused with SESSION_INVALID_STATE when a storage does not offer it', async (t) => {
  const storage = new Recording()
  for (const call of [() => storage.length(), () => storage.clear(), () => storage.cleanup()]) {
    t.true(isSessionError(await t.throwsAsync(call()), 'SESSION_INVALID_STATE'))
  }
  const listing = (async () => {
    for await (const _ of storage.all()) t.fail()
  })()
  t.true(isSessionError(await t.throwsAsync(listing), 'SESSION_INVALID_STATE'))
  t.true(isSessionError(await t.throwsAsync(storage.cleanup(Number.NaN)), 'SESSION_INVALID_OPERATION'))
})

test('a backend must override _write or _apply; options are checked', (t) => {
  class Empty extends AbstractStorage {
    readonly capabilities = { batch: false, admin: false, shared: false }
    constructor() {
      super('empty', {}, 'Empty')
    }
    protected override _get(): undefined {
      return undefined
    }
  }
  t.throws(() => new Empty(), { instanceOf: TypeError, message: /Empty must override _write or _apply/ })
  t.throws(() => new Recording({ now: 'later' as never }), { instanceOf: TypeError, message: /Recording option "now"/ })
  t.throws(() => new Recording(null as never), { instanceOf: TypeError, message: /Recording options must be an object/ })
  class Nameless extends AbstractStorage {
    readonly capabilities = { batch: false, admin: false, shared: false }
    constructor() {
      super(undefined as never, {}, 'Nameless')
    }
    protected override _get(): undefined {
      return undefined
    }
    protected override _apply(): boolean {
      return true
    }
  }
  t.throws(() => new Nameless(), { instanceOf: TypeError, message: /Nameless option "name" must be a non-empty string/ })
})

test('a get of an id that is not a string is no session and costs no backend call', async (t) => {
  const storage = new Recording()
  t.is(await storage.get(undefined as never), undefined)
  t.deepEqual(storage.seen, [])
})

/** A backend whose writes answer what it is told, and that reads versions through `_get`. */
class Scripted extends AbstractStorage {
  readonly capabilities: StorageCapabilities = { batch: false, admin: false, shared: true }
  readonly records = new Map<string, SessionRecord>()
  answer: boolean | 'conflict' = true
  readonly applied: StorageOperation[] = []
  reads = 0

  constructor(options?: AbstractStorageOptions) {
    super('scripted', options, 'Scripted')
  }

  protected override _get(id: string): SessionRecord | undefined {
    this.reads++
    if (id === 'broken') throw new SessionError('SESSION_INVALID_RECORD', 'unusable')
    return this.records.get(id)
  }

  protected override _apply(op: StorageOperation): boolean | 'conflict' {
    this.applied.push(op)
    return this.answer
  }
}

test('conditional writes reach the backend with their ifVersion; the public methods answer as the contract says', async (t) => {
  const storage = new Scripted()
  const record = { data: {}, createdAt: 1, expiresAt: HOUR }
  t.is(await storage.set('a', record, 0), undefined)
  t.is(await storage.delete('a', 2), undefined)
  storage.answer = 'conflict'
  t.is(await storage.set('a', record, 1), 'conflict')
  t.is(await storage.update('a', 'k', 1, HOUR, 1), 'conflict')
  t.is(await storage.remove('a', 'k', HOUR, 1), 'conflict')
  t.is(await storage.delete('a', 1), 'conflict')
  t.deepEqual(
    storage.applied.map((op) => [op.type, 'ifVersion' in op ? op.ifVersion : 'none']),
    [
      ['set', 0],
      ['delete', 2],
      ['set', 1],
      ['update', 1],
      ['remove', 1],
      ['delete', 1],
    ],
  )
  storage.answer = true
  await storage.update('a', 'k', 1, HOUR)
  t.false('ifVersion' in storage.applied.at(-1)!, 'an unconditional write carries no ifVersion')
})

test('versions() reads through _get by default: live records only, each id once, unusable records left out', async (t) => {
  let now = 1000
  const storage = new Scripted({ now: () => now })
  storage.records.set('a', { data: {}, createdAt: 0, expiresAt: 5000, version: 3 })
  storage.records.set('dead', { data: {}, createdAt: 0, expiresAt: 500, version: 9 })
  const versions = await storage.versions(['a', 'dead', 'missing', 'broken', 'a', 7 as never])
  t.deepEqual(Object.fromEntries(versions), { a: 3 })
  t.is(storage.reads, 4, 'one read per distinct string id')
  t.is((await storage.versions([])).size, 0)
  t.is(storage.reads, 4, 'no ids, no read')
  now = 6000
  t.is((await storage.versions(['a'])).size, 0)
  t.true(isSessionError(await t.throwsAsync(storage.versions('a' as never)), 'SESSION_INVALID_OPERATION'))
  await storage.close()
  t.true(isSessionError(await t.throwsAsync(storage.versions(['a'])), 'SESSION_CLOSED'))
})
