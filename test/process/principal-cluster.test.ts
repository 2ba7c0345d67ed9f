/**
 * Find and revoke a user's sessions across processes: two server processes (each its own
 * SessionManager with `principal: 'userId'`) on one MariaDB table, each reached directly on its
 * own port. A user's sessions are revoked on one server; the other, which had one of them
 * cached, refuses it within `trustCacheFor` without a bus, and at once with a Redis bus.
 */
import test, { type ExecutionContext } from 'ava'
import { ClusterClient, since, sleep, startCluster, STICKY } from '../helpers/cluster.js'
import { probeHaproxy } from '../helpers/haproxy.js'
import { MYSQL_URL, probeTcp, REDIS_URL, serviceTest } from '../helpers/services.js'

/** `trustCacheFor` on a shared storage without a bus, by default (seconds). */
const DEFAULT_TRUST_CACHE_FOR_S = 1
/** How much later than `trustCacheFor` a revoked id may still be served, at most (a probe's round trip, a loaded machine). */
const REVOCATION_MARGIN_MS = 1000

const needs = [await serviceTest('HAProxy', probeHaproxy), await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))]
const withRedis = await serviceTest('Redis', () => probeTcp(REDIS_URL, 6379))
const clusterTest = needs.every((fn) => fn === test) ? test.serial : test.serial.skip
const busTest = needs.every((fn) => fn === test) && withRedis === test ? test.serial : test.serial.skip

/** Replay `cookie` on `client`'s server until the session is refused (a new, empty one); resolves to how long that took. */
async function untilRefused(t: ExecutionContext, client: ClusterClient, cookie: string, limitMs: number): Promise<number> {
  const start = performance.now()
  for (;;) {
    const reply = await client.replay(cookie)
    t.is(reply.status, 200, JSON.stringify(reply.body))
    if (reply.body.isNew === true) return since(start)
    t.deepEqual(reply.body.data, { userId: 42 }, 'until it is refused, the session is served as it was')
    if (since(start) > limitMs) return since(start)
    await sleep(25)
  }
}

async function revokeAcrossServers(t: ExecutionContext, bus: boolean): Promise<void> {
  const cluster = await startCluster(t, { storage: 'mysql', nodes: ['a', 'b'], balance: STICKY, principal: 'userId', bus })
  const onA = new ClusterClient(cluster.node('a').port)
  const onB = new ClusterClient(cluster.node('b').port)
  const laptop = new ClusterClient(cluster.node('b').port)

  // The phone logs in on a, and b serves it too (so both have it cached); the laptop logs in on b.
  await onA.ok('/set?key=userId&value=42')
  const phone = onA.cookie
  t.deepEqual((await onB.replay(phone)).body.data, { userId: 42 })
  t.deepEqual((await onA.replay(phone)).body.data, { userId: 42 })
  await laptop.ok('/set?key=userId&value=42')
  const other = new ClusterClient(cluster.node('a').port)
  await other.ok('/set?key=userId&value=7')

  t.is((await laptop.ok('/sessions-of?value=42')).ids?.length, 2, 'both servers see both sessions of the user')
  t.is((await onA.ok('/sessions-of?value=42')).ids?.length, 2)

  // "Log out my other devices", on b.
  t.is((await laptop.ok('/revoke-of?value=42')).ended, 1)
  t.true((await onB.replay(phone)).body.isNew, 'the server that revoked refuses the phone at once')
  const limit = bus ? 0 : DEFAULT_TRUST_CACHE_FOR_S * 1000 + REVOCATION_MARGIN_MS
  const took = await untilRefused(t, onA, phone, limit + 2000)
  t.true(took <= limit + (bus ? 500 : 0), `a, which had the phone cached, refused it after ${took} ms (bound ${limit} ms${bus ? ' plus the bus' : ''})`)
  if (bus) t.true((await cluster.stats('a'))['revokedElsewhere']! >= 1, 'a dropped it on the bus message')

  t.deepEqual((await laptop.ok('/read')).data, { userId: 42 }, 'the session that revoked stays')
  t.deepEqual((await other.ok('/read')).data, { userId: 7 }, "another user's session stays")
  t.deepEqual((await onA.ok('/sessions-of?value=42')).ids, [(await laptop.ok('/read')).id], 'the index holds the one left')
  t.is(await cluster.storage.length(), 2, 'the storage holds the two sessions left')
}

clusterTest('two servers on one MariaDB table, no bus: a user revoked on one is refused by the other, which had it cached, within trustCacheFor', (t) =>
  revokeAcrossServers(t, false),
)

busTest('two servers on one MariaDB table with a Redis bus: a user revoked on one is refused by the other at once', (t) => revokeAcrossServers(t, true))
