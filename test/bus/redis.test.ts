import test from 'ava'
import { randomUUID } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import { RedisBus, type RedisBusOptions } from '../../buses/redis.js'
import { probeTcp, REDIS_URL, serviceTest } from '../helpers/services.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { adminClient, busConnections, killConnections, record, uniqueChannel, waitFor } from './support.js'

const redisTest = await serviceTest('Redis', () => probeTcp(REDIS_URL, 6379))

// The tests that find connections in CLIENT LIST by origin (and kill them) use origins of this
// run only: another run on the same Redis must not be counted, nor have its connections killed.
const RUN = randomUUID().slice(0, 8)

const redisPort = Number(new URL(REDIS_URL).port || 6379)
const redisHost = new URL(REDIS_URL).hostname || '127.0.0.1'

/** A bus with short delays; closed when the test ends. */
function makeBus(t: Teardown, options: RedisBusOptions): RedisBus {
  const bus = new RedisBus({
    url: REDIS_URL,
    maxReconnectDelay: 100,
    connectTimeout: 5000,
    onError: (err) => process.env['BUS_DEBUG'] && console.error('bus error', err),
    ...options,
  })
  t.teardown(() => bus.close())
  return bus
}

type Teardown = { teardown: (fn: () => Promise<void> | void) => void }

/** Two buses (see {@link makeBus}) on a channel of their own, ready, with what `b` receives recorded. */
async function readyPair(t: Teardown, aOptions: RedisBusOptions = {}, bOptions: RedisBusOptions = {}) {
  const channel = uniqueChannel()
  const a = makeBus(t, { channel, ...aOptions })
  const b = makeBus(t, { channel, ...bOptions })
  const rb = record(b)
  await within(10_000, 'ready', Promise.all([a.ready(), b.ready()]))
  return { channel, a, b, rb }
}

/** A plain Redis client for the test's own commands, closed when the test ends. */
async function admin(t: Teardown): ReturnType<typeof adminClient> {
  const client = await adminClient()
  t.teardown(() => client.destroy())
  return client
}

/** Resolves within `ms` or rejects saying what hung. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms))),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** A port of 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

redisTest('two buses deliver to each other, never to themselves, and only on their channel', async (t) => {
  const channel = uniqueChannel()
  const a = makeBus(t, { channel, origin: 'bus-a' })
  const b = makeBus(t, { channel, origin: 'bus-b' })
  const other = makeBus(t, { channel: uniqueChannel(), origin: 'bus-other' })
  const [ra, rb, rOther] = [record(a), record(b), record(other)]
  await within(10_000, 'ready', Promise.all([a.ready(), b.ready(), other.ready()]))
  t.true(a.stats().connected)

  t.true(a.publish({ id: 'session-1', version: 1, kind: 'write' }))
  t.true(a.publish({ id: 'session-1', version: 2, kind: 'renew' }))
  t.true(a.publish({ id: 'session-2', version: 5, kind: 'destroy' }))
  t.true(b.publish({ id: 'session-3', version: 9, kind: 'write' }))
  await waitFor('both sides to receive, and to see their own echoes', () => {
    const [sa, sb] = [a.stats(), b.stats()]
    return sb.received === 3 && sa.received === 1 && sa.own === 3 && sb.own === 1
  })

  t.deepEqual(
    rb.messages.map(({ id, version, kind, origin }) => ({ id, version, kind, origin })),
    [
      { id: 'session-1', version: 1, kind: 'write', origin: 'bus-a' },
      { id: 'session-1', version: 2, kind: 'renew', origin: 'bus-a' },
      { id: 'session-2', version: 5, kind: 'destroy', origin: 'bus-a' },
    ],
  )
  t.deepEqual(
    ra.messages.map(({ id, origin }) => ({ id, origin })),
    [{ id: 'session-3', origin: 'bus-b' }],
  )
  t.true(
    rb.messages.every((m) => m.origin !== 'bus-b'),
    'b never hears itself',
  )
  t.deepEqual(rOther.messages, [], 'another channel hears nothing')
  t.is(other.stats().own + other.stats().received, 0)

  const sa = a.stats()
  const sb = b.stats()
  t.is(sa.sent, 3)
  t.is(sb.sent, 1)
  t.is(sa.dropped + sb.dropped + sa.malformed + sb.malformed, 0)
  t.is(sa.queued, 0)
  t.is(typeof sb.lag.lastMs, 'number')
  t.true((sb.lag.maxMs ?? Infinity) < 1000, 'loopback lag is small')
  t.true((sb.lag.meanMs ?? -1) >= 0)
  // A gap is reported only after trouble (a busy machine can make a first connection attempt time out).
  if (sa.errors === 0) t.deepEqual(ra.gaps, [], 'no gap without trouble')
  if (sb.errors === 0) t.deepEqual(rb.gaps, [], 'no gap without trouble')
})

redisTest('lag is measured with the clock given in "now"', async (t) => {
  let clock = 1_000_000
  const { a, b } = await readyPair(t, { now: () => clock }, { now: () => clock + 250 })
  a.publish({ id: 'lagged', version: 1, kind: 'write' })
  await waitFor('delivery', () => b.stats().received === 1)
  clock += 1000
  a.publish({ id: 'lagged', version: 2, kind: 'write' })
  await waitFor('delivery', () => b.stats().received === 2)
  t.deepEqual(b.stats().lag, { lastMs: 250, maxMs: 250, meanMs: 250 })
})

redisTest('malformed messages on the channel are counted and dropped; listeners never see them', async (t) => {
  const { channel, a, b, rb } = await readyPair(t)
  const redis = await admin(t)

  const valid = { id: 'x', version: 1, kind: 'write', origin: 'raw', sentAt: Date.now() } as const
  const garbage = [
    'not json',
    '',
    '[1,2,3]',
    'null',
    '42',
    JSON.stringify({ ...valid, id: 7 }),
    JSON.stringify({ ...valid, id: '' }),
    JSON.stringify({ ...valid, version: -1 }),
    JSON.stringify({ ...valid, version: 1.5 }),
    JSON.stringify({ ...valid, kind: 'explode' }),
    JSON.stringify({ ...valid, origin: '' }),
    JSON.stringify({ ...valid, sentAt: 'now' }),
    JSON.stringify({ ...valid, id: 'y'.repeat(5000) }),
    '{"id":"x","version":1,"kind":"write","origin":"raw"', // cut short
    '\u0000\uffff binary',
  ]
  for (const text of garbage) await redis.publish(channel, text)
  // A valid message from a publisher that is no bus, with a field a newer version might add.
  await redis.publish(channel, JSON.stringify({ ...valid, extra: true }))
  a.publish({ id: 'after', version: 3, kind: 'destroy' })

  await waitFor('the valid messages', () => b.stats().received === 2)
  t.is(b.stats().malformed, garbage.length)
  t.deepEqual(
    rb.messages.map((m) => [m.id, m.kind]),
    [
      ['x', 'write'],
      ['after', 'destroy'],
    ],
  )
  t.false('extra' in (rb.messages[0] ?? {}), 'unknown fields are not passed on')
  t.true(b.stats().connected, 'garbage does not hurt the connection')
})

redisTest('a listener that throws is counted and reported; the other listeners still get the message', async (t) => {
  const channel = uniqueChannel()
  const reported: unknown[] = []
  const a = makeBus(t, { channel })
  const b = makeBus(t, { channel, onError: (err) => reported.push(err) })
  b.subscribe({
    onMessage: () => {
      throw new Error('listener bug')
    },
  })
  const rb = record(b)
  const unsubscribed = record(b)
  const remove = b.subscribe(unsubscribed)
  remove()
  remove()
  await within(10_000, 'ready', Promise.all([a.ready(), b.ready()]))
  a.publish({ id: 's', version: 1, kind: 'write' })
  await waitFor('delivery', () => rb.messages.length === 1)
  t.is(b.stats().listenerErrors, 1)
  t.true(reported.some((err) => err instanceof Error && err.message === 'listener bug'))
  t.is(unsubscribed.messages.length, 1, 'the first subscription of that recorder stays; the removed one got nothing more')
})

redisTest('the subscriber connection killed: it reconnects, reports a gap and delivers again', async (t) => {
  const { a, b, rb } = await readyPair(t, { origin: `kill-sub-a-${RUN}` }, { origin: `kill-sub-b-${RUN}` })
  const redis = await admin(t)

  const { sub } = await busConnections(redis, `kill-sub-b-${RUN}`)
  t.is(sub.length, 1)
  t.is(await killConnections(redis, sub), 1)

  // Publish until b hears again: what is sent while b resubscribes is lost (pub/sub keeps nothing).
  let n = 0
  await waitFor(
    'delivery after the kill',
    () => {
      a.publish({ id: `probe-${n++}`, version: n, kind: 'write' })
      return rb.messages.length > 0
    },
    8000,
  )
  const stats = b.stats()
  t.true(stats.reconnects >= 1)
  t.true(stats.errors >= 1)
  t.true(stats.connected)
  t.true(stats.gaps >= 1)
  t.true(rb.gaps.length >= 1)
  const gap = rb.gaps[0]
  t.true(gap !== undefined && gap.since <= gap.until)
  const after = await busConnections(redis, `kill-sub-b-${RUN}`)
  t.is(after.sub.length, 1, 'one new subscriber connection, not a pile of them')
  t.false(after.sub.includes(sub[0] ?? ''))
})

redisTest('the publisher connection killed: messages published meanwhile are queued or re-sent, none lost', async (t) => {
  const { a, rb } = await readyPair(t, { origin: `kill-pub-a-${RUN}` }, { origin: `kill-pub-b-${RUN}` })
  const redis = await admin(t)

  const { pub } = await busConnections(redis, `kill-pub-a-${RUN}`)
  t.is(await killConnections(redis, pub), 1)
  const ids = Array.from({ length: 20 }, (_, i) => `after-kill-${i}`)
  for (const id of ids) t.true(a.publish({ id, version: 1, kind: 'write' }))

  await waitFor('all 20 to arrive', () => new Set(rb.messages.map((m) => m.id)).size === ids.length, 8000)
  t.deepEqual([...new Set(rb.messages.map((m) => m.id))].sort(), [...ids].sort())
  const stats = a.stats()
  t.is(stats.dropped, 0)
  t.is(stats.sent, ids.length)
  t.true(stats.reconnects >= 1)
  t.true(stats.connected)
})

redisTest('Redis unreachable (through a proxy): publish returns at once, queues bounded, and sends when Redis is back', async (t) => {
  const channel = uniqueChannel()
  const proxy = await TcpProxy.start({ host: redisHost, port: redisPort })
  t.teardown(() => proxy.close())
  const a = makeBus(t, { url: `redis://127.0.0.1:${proxy.port}`, channel, origin: 'via-proxy', maxQueue: 10 })
  const b = makeBus(t, { channel, origin: 'direct' })
  const ra = record(a)
  const rb = record(b)
  await within(10_000, 'ready', Promise.all([a.ready(), b.ready()]))

  proxy.refuse(true) // cuts a's two connections and refuses new ones
  await waitFor('a to notice', () => !a.stats().connected)
  const started = Date.now()
  for (let i = 0; i < 15; i++) t.true(a.publish({ id: `down-${i}`, version: i, kind: 'write' }))
  // Generous for a busy machine, and still well under one connection attempt (connectTimeout, 5 s).
  t.true(Date.now() - started < 2000, 'publish does not wait for Redis')
  t.is(a.stats().queued, 10)
  t.is(a.stats().dropped, 5, 'the five oldest were dropped')
  b.publish({ id: 'missed-by-a', version: 1, kind: 'destroy' })
  await new Promise((resolve) => setTimeout(resolve, 300)) // several refused reconnection attempts
  t.false(a.stats().connected)

  proxy.refuse(false)
  await waitFor('the queue to drain', () => a.stats().sent === 10 && a.stats().queued === 0, 8000)
  await waitFor('b to receive the ten kept', () => rb.messages.length === 10)
  t.deepEqual(
    rb.messages.map((m) => m.id),
    Array.from({ length: 10 }, (_, i) => `down-${i + 5}`),
  )
  t.false(
    ra.messages.some((m) => m.id === 'missed-by-a'),
    'sent while a was unsubscribed: lost, as pub/sub is',
  )
  await waitFor('a gap to be reported to a', () => ra.gaps.length === 1)
  const stats = a.stats()
  t.true(stats.connected)
  t.true(stats.reconnects >= 2, 'both connections came back')
  t.true(stats.errors >= 2)
  t.is(stats.gaps, 1)
})

redisTest('a stalled network (bytes stop flowing): publish still returns at once and close ends within its bound', async (t) => {
  const channel = uniqueChannel()
  const proxy = await TcpProxy.start({ host: redisHost, port: redisPort })
  t.teardown(() => proxy.close())
  const a = new RedisBus({ url: `redis://127.0.0.1:${proxy.port}`, channel, closeTimeout: 200 })
  await within(10_000, 'ready', a.ready())
  proxy.pause()
  for (let i = 0; i < 200; i++) a.publish({ id: `stalled-${i}`, version: i, kind: 'write' })
  t.is(a.stats().queued, 200, 'sends in flight and queued')
  t.is(a.stats().sent, 0)
  await within(3000, 'close', a.close())
  t.is(a.stats().dropped, 200)
  t.false(a.stats().connected)
})

redisTest('a bus started while Redis is unreachable: publish queues, ready() waits, close() ends it and rejects ready()', async (t) => {
  const port = await closedPort()
  const bus = new RedisBus({ url: `redis://127.0.0.1:${port}`, channel: uniqueChannel(), maxReconnectDelay: 50, maxQueue: 3 })
  const ready = bus.ready()
  for (let i = 0; i < 5; i++) t.true(bus.publish({ id: `early-${i}`, version: 0, kind: 'write' }))
  await waitFor('connection errors', () => bus.stats().errors >= 2)
  t.like(bus.stats(), { connected: false, queued: 3, dropped: 2, sent: 0 })
  await within(3000, 'close', bus.close())
  await t.throwsAsync(ready, { message: /closed before it was ready/ })
  t.like(bus.stats(), { queued: 0, dropped: 5 })
  t.false(bus.publish({ id: 'late', version: 0, kind: 'write' }), 'publish after close drops')
  t.is(bus.stats().dropped, 6)
})

redisTest('close() is idempotent and ends every connection the bus opened', async (t) => {
  const channel = uniqueChannel()
  const redis = await admin(t)
  const bus = new RedisBus({ url: REDIS_URL, channel, origin: `closing-bus-${RUN}` })
  const peer = makeBus(t, { channel })
  const rPeer = record(peer)
  await within(10_000, 'ready', Promise.all([bus.ready(), peer.ready()]))
  const before = await busConnections(redis, `closing-bus-${RUN}`)
  t.is(before.pub.length + before.sub.length, 2)

  // Queued messages get their chance before the connections end.
  bus.publish({ id: 'last-words', version: 1, kind: 'destroy' })
  const first = bus.close()
  const second = bus.close()
  t.is(first, second)
  await within(2000, 'close', first)
  await bus.close()
  await waitFor('the last message', () => rPeer.messages.length === 1)
  t.is(rPeer.messages[0]?.id, 'last-words')
  t.like(bus.stats(), { sent: 1, dropped: 0, connected: false })
  await waitFor('Redis to see both connections gone', async () => {
    const after = await busConnections(redis, `closing-bus-${RUN}`)
    return after.pub.length + after.sub.length === 0
  })
  t.pass()
})

redisTest('close() right after construction, while both connections are being made, leaves none behind', async (t) => {
  const redis = await admin(t)
  const origins = Array.from({ length: 5 }, (_, i) => `closed-early-${i}-${RUN}`)
  for (const origin of origins) {
    const bus = new RedisBus({ url: REDIS_URL, channel: uniqueChannel(), origin })
    bus.publish({ id: 'x', version: 1, kind: 'write' })
    await within(3000, 'close', bus.close())
  }
  // Redis drops a closed connection from CLIENT LIST when it gets to it: a busy machine can take
  // longer than a fixed wait. One a bus left open never goes, so the wait times out and fails.
  await new Promise((resolve) => setTimeout(resolve, 100))
  for (const origin of origins) {
    await waitFor(`Redis to see the connections of ${origin} gone`, async () => {
      const left = await busConnections(redis, origin)
      return left.pub.length + left.sub.length === 0
    })
  }
  t.pass()
})

redisTest('a client given as a template is duplicated, never used or closed', async (t) => {
  const channel = uniqueChannel()
  const template = await admin(t)
  const a = new RedisBus({ client: template, channel, maxReconnectDelay: 100 })
  t.teardown(() => a.close())
  const b = makeBus(t, { channel })
  const rb = record(b)
  await within(10_000, 'ready', Promise.all([a.ready(), b.ready()]))
  a.publish({ id: 'from-template', version: 1, kind: 'write' })
  await waitFor('delivery', () => rb.messages.length === 1)
  await a.close()
  t.is(await template.ping(), 'PONG', 'the template client is still open')
})

test('bad options are TypeErrors naming the option', (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ['redis://x', /options must be an object/],
    [{ url: 'http://127.0.0.1' }, /"url"/],
    [{ url: 42 }, /"url"/],
    [{ url: 'redis://127.0.0.1', client: {} }, /"url" or option "client"/],
    [{ client: { ping: () => 1 } }, /"client"/],
    [{ channel: '' }, /"channel"/],
    [{ channel: 7 }, /"channel"/],
    [{ maxQueue: 0 }, /"maxQueue"/],
    [{ maxQueue: 1.5 }, /"maxQueue"/],
    [{ maxReconnectDelay: -1 }, /"maxReconnectDelay"/],
    [{ connectTimeout: 'soon' }, /"connectTimeout"/],
    [{ closeTimeout: -5 }, /"closeTimeout"/],
    [{ origin: '' }, /"origin"/],
    [{ now: 5 }, /"now"/],
    [{ onError: 'log' }, /"onError"/],
    [{ chanel: 'typo' }, /"chanel" is not known/],
  ]
  for (const [options, message] of cases) {
    t.throws(() => new RedisBus(options as RedisBusOptions), { instanceOf: TypeError, message }, JSON.stringify(options))
  }
})

redisTest('bad input to publish and subscribe is a TypeError; nothing is sent', async (t) => {
  const bus = makeBus(t, { channel: uniqueChannel() })
  const bad: unknown[] = [
    null,
    { id: '', version: 1, kind: 'write' },
    { id: 'x'.repeat(513), version: 1, kind: 'write' },
    { id: 'x', version: -1, kind: 'write' },
    { id: 'x', version: Number.NaN, kind: 'write' },
    { id: 'x', version: 1, kind: 'expire' },
  ]
  for (const value of bad) t.throws(() => bus.publish(value as never), { instanceOf: TypeError })
  t.throws(() => bus.subscribe({} as never), { instanceOf: TypeError, message: /onMessage/ })
  t.throws(() => bus.subscribe({ onMessage: () => {}, onGap: 1 } as never), { instanceOf: TypeError, message: /onGap/ })
  t.is(bus.stats().queued + bus.stats().sent, 0)
})

redisTest('flush resolves once what was published before it was acknowledged by Redis, and is bounded while Redis is away', async (t) => {
  const channel = uniqueChannel()
  const proxy = await TcpProxy.start({ host: redisHost, port: redisPort })
  t.teardown(() => proxy.close())
  const a = makeBus(t, { url: `redis://127.0.0.1:${proxy.port}`, channel, origin: 'flushing' })
  const b = makeBus(t, { channel, origin: 'listening' })
  const heard = record(b)
  await within(10_000, 'ready', Promise.all([a.ready(), b.ready()]))
  t.is(
    await Promise.race([a.flush(1000).then(() => 'resolved'), new Promise((resolve) => setImmediate(() => resolve('pending')))]),
    'resolved',
    'nothing to wait for',
  )

  for (let i = 1; i <= 5; i++) a.publish({ id: `s${i}`, version: i, kind: 'destroy' })
  await within(5000, 'flush', a.flush(5000))
  t.is(a.stats().sent, 5, 'every message published before the flush was acknowledged')
  await waitFor('delivery', () => heard.messages.length === 5)

  proxy.pause()
  a.publish({ id: 'held', version: 1, kind: 'renew' })
  const started = Date.now()
  await within(5000, 'bounded flush', a.flush(150))
  const waited = Date.now() - started
  t.true(waited >= 100, `waited ${waited} ms for a message that could not be sent`)
  proxy.resume()
})
