import test from 'ava'
import { MemoryBus, MemoryBusNetwork } from '../../buses/memory.js'
import { decodeInvalidationMessage, encodeInvalidationMessage, type InvalidationBus } from '../../src/bus.js'
import { record, waitFor } from './support.js'

test('buses on one network deliver to each other, asynchronously and in order, never to themselves', async (t) => {
  const network = new MemoryBusNetwork()
  const a = new MemoryBus({ network, origin: 'a' })
  const b = new MemoryBus({ network, origin: 'b' })
  const alone = new MemoryBus()
  const [ra, rb, rAlone] = [record(a), record(b), record(alone)]
  await Promise.all([a.ready(), b.ready()])

  a.publish({ id: 's1', version: 1, kind: 'write' })
  a.publish({ id: 's1', version: 2, kind: 'renew' })
  b.publish({ id: 's2', version: 4, kind: 'destroy' })
  t.is(rb.messages.length, 0, 'not delivered within the publishing task')
  await waitFor('delivery', () => rb.messages.length === 2 && ra.messages.length === 1)
  t.deepEqual(
    rb.messages.map((m) => [m.id, m.version, m.kind, m.origin]),
    [
      ['s1', 1, 'write', 'a'],
      ['s1', 2, 'renew', 'a'],
    ],
  )
  t.deepEqual(
    ra.messages.map((m) => [m.id, m.origin]),
    [['s2', 'b']],
  )
  t.like(a.stats(), { sent: 2, received: 1, own: 2, connected: true })
  t.is(rAlone.messages.length, 0, 'a bus of its own hears nobody')
  await Promise.all([a.close(), b.close(), alone.close()])
})

test('network down: publishes queue (bounded), listeners get a gap when it is up, then the queue is sent', async (t) => {
  const network = new MemoryBusNetwork()
  let clock = 1000
  const a = new MemoryBus({ network, origin: 'a', maxQueue: 2, now: () => clock })
  const b = new MemoryBus({ network, origin: 'b', now: () => clock })
  const [ra, rb] = [record(a), record(b)]
  network.down()
  t.false(a.stats().connected)
  for (let i = 0; i < 3; i++) t.true(a.publish({ id: `q${i}`, version: i, kind: 'write' }))
  t.like(a.stats(), { queued: 2, dropped: 1, sent: 0 })
  const ready = b.ready()
  clock = 1500
  network.up()
  await ready
  await waitFor('delivery', () => rb.messages.length === 2)
  t.deepEqual(
    rb.messages.map((m) => m.id),
    ['q1', 'q2'],
  )
  t.deepEqual(ra.gaps, [{ since: 1000, until: 1500 }])
  t.deepEqual(rb.gaps, [{ since: 1000, until: 1500 }])
  t.like(a.stats(), { queued: 0, sent: 2, reconnects: 1, gaps: 1 })
  await Promise.all([a.close(), b.close()])
})

test('malformed messages are counted and dropped; a throwing listener is counted and reported', async (t) => {
  const reported: unknown[] = []
  const bus = new MemoryBus({ onError: (err) => reported.push(err) })
  bus.subscribe({
    onMessage: () => {
      throw new Error('listener bug')
    },
  })
  const r = record(bus)
  for (const text of ['', 'nope', '{}', 5, null, JSON.stringify({ id: 'x', version: 1, kind: 'write', origin: 'o', sentAt: -1 })]) bus._receive(text)
  bus._receive(encodeInvalidationMessage({ id: 'x', version: 1, kind: 'write', origin: 'elsewhere', sentAt: Date.now() }))
  t.like(bus.stats(), { malformed: 6, received: 1, listenerErrors: 1 })
  t.is(r.messages.length, 1)
  t.true(reported.some((err) => err instanceof Error && err.message === 'listener bug'))
  await bus.close()
})

test('close is idempotent; after it publish drops and nothing is delivered', async (t) => {
  const network = new MemoryBusNetwork()
  const a: InvalidationBus = new MemoryBus({ network })
  const b = new MemoryBus({ network })
  const rb = record(b)
  const closing = b.close()
  t.is(b.close(), closing)
  await closing
  await b.close()
  t.false(b.publish({ id: 'x', version: 1, kind: 'write' }))
  a.publish({ id: 'y', version: 1, kind: 'write' })
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.is(rb.messages.length, 0)
  t.like(b.stats(), { dropped: 1, connected: false })
  await t.throwsAsync(b.ready())
  await a.close()
})

test('bad options are TypeErrors naming the option', (t) => {
  t.throws(() => new MemoryBus({ network: {} as MemoryBusNetwork }), { instanceOf: TypeError, message: /"network"/ })
  t.throws(() => new MemoryBus({ maxQueue: 0 }), { instanceOf: TypeError, message: /"maxQueue"/ })
  t.throws(() => new MemoryBus({ url: 'redis://x' } as never), { instanceOf: TypeError, message: /"url" is not known/ })
})

test('the wire form: encode and decode round-trip; unknown fields are ignored, wrong ones refused', (t) => {
  const message = { id: 'abc', version: 3, kind: 'renew', origin: 'o', sentAt: 5 } as const
  const text = encodeInvalidationMessage(message)
  t.deepEqual(decodeInvalidationMessage(text), message)
  t.deepEqual(decodeInvalidationMessage(JSON.stringify({ ...message, future: [1] })), message)
  t.is(decodeInvalidationMessage(JSON.stringify({ ...message, kind: 'expire' })), undefined)
  t.is(decodeInvalidationMessage(JSON.stringify({ ...message, version: 2 ** 60 })), undefined)
  t.is(decodeInvalidationMessage(' '.repeat(3000)), undefined)
  t.true(text.length < 100)
})
