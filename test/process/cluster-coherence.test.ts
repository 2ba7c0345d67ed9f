/**
 * The acceptance tests of cluster coherence: three server processes (each its own SessionManager
 * on default options, a signed CookieIdentity) on one shared table, behind a real HAProxy; once
 * on MariaDB (MySQLStorage) and once on DynamoDB (DynamoDBStorage on dynalite). Everything runs
 * on loopback with fixed counts; every process is stopped at the end, whatever happened.
 */
import test, { type ExecutionContext } from 'ava'
import { AckLedger } from '../helpers/ack-ledger.js'
import { since, sleep, startCluster, STICKY, type ClusterAnswer, type ClusterClient, type ClusterReply, type ClusterStorage } from '../helpers/cluster.js'
import { probeHaproxy } from '../helpers/haproxy.js'
import { MYSQL_URL, probeTcp, REDIS_URL, serviceTest } from '../helpers/services.js'

/** `trustCacheFor` on a shared storage without a bus, by default (seconds). */
const DEFAULT_TRUST_CACHE_FOR_S = 1
/** How much later than `trustCacheFor` a revoked id may still be served, at most (a probe's round trip, a loaded machine). */
const REVOCATION_MARGIN_MS = 1000
/** Pause between two replays of a revoked cookie. */
const REPLAY_EVERY_MS = 25

const probes = new Map<string, Promise<boolean>>()
/** Whether `name` answers; each service is probed (and its absence announced) once. */
function available(name: string, probe: () => Promise<void>): Promise<boolean> {
  let result = probes.get(name)
  if (result === undefined) probes.set(name, (result = serviceTest(name, probe).then((fn) => fn === test)))
  return result
}

type Register = (title: string, implementation: (t: ExecutionContext) => Promise<void>) => void

/** `test.serial` when every service the cluster needs answers (one cluster at a time: the machine is small), else `test.serial.skip`. */
async function clusterTest(storage: ClusterStorage, bus: boolean): Promise<Register> {
  const needs: Array<[string, () => Promise<void>]> = [['HAProxy', probeHaproxy]]
  if (storage === 'mysql') needs.push(['MariaDB', () => probeTcp(MYSQL_URL, 3306)])
  if (bus) needs.push(['Redis', () => probeTcp(REDIS_URL, 6379)])
  for (const [name, probe] of needs) if (!(await available(name, probe))) return (title, implementation) => test.serial.skip(title, implementation)
  return (title, implementation) => test.serial(title, implementation)
}

function show(value: unknown): string {
  return JSON.stringify(value)
}

/**
 * (a) SIGKILL one backend while clients write: every acknowledged write is served by the servers
 * that are left (and is in the storage).
 */
async function killABackend(t: ExecutionContext, storage: ClusterStorage): Promise<void> {
  const CLIENTS = 9
  const WRITES = 8
  const KILL_AFTER_ACKS = 24
  const cluster = await startCluster(t, { storage, balance: STICKY, healthCheck: { intervalMs: 100, fall: 1, rise: 1 } })

  // A session's first request has no cookie yet and goes round robin, so it may be created on
  // another server than the one its cookie then sticks to, which would keep a copy. Only sessions
  // created on their home server are used: before the kill each is cached by exactly one server,
  // and this scenario tests the loss of a server, not stale copies ((b) does).
  const clients: Array<{ client: ClusterClient; id: string; home: string }> = []
  const ledger = new AckLedger()
  for (let attempt = 0; clients.length < CLIENTS && attempt < CLIENTS * 8; attempt++) {
    const client = cluster.client()
    const created = await client.ok('/set?key=k0&value=0')
    const home = (await client.ok('/read')).node
    if (created.node !== home || typeof created.id !== 'string') continue
    clients.push({ client, id: created.id, home })
    ledger.acknowledged(created.id, 'k0', 0)
  }
  t.is(clients.length, CLIENTS, 'enough sessions created on their home server')
  const homes = new Map<string, number>()
  for (const { home } of clients) homes.set(home, (homes.get(home) ?? 0) + 1)
  const victim = [...homes].sort((x, y) => y[1] - x[1])[0]![0]

  const acked = new Map<string, Map<string, number>>()
  let acks = 0
  let refused = 0
  let killed: Promise<void> | undefined
  const kill = (): Promise<void> => (killed ??= cluster.node(victim).kill())
  await Promise.all(
    clients.map(async ({ client, id }) => {
      const keys = new Map<string, number>([['k0', 0]])
      acked.set(id, keys)
      for (let i = 1; i <= WRITES; i++) {
        const reply: ClusterReply = await client
          .get(`/set?key=k${i}&value=${i}`)
          .catch((err: unknown) => ({ status: 0, body: { node: '?', pid: 0, error: String(err) } }))
        if (reply.status === 200 && reply.body.id === id) {
          keys.set(`k${i}`, i)
          ledger.acknowledged(id, `k${i}`, i)
          if (++acks === KILL_AFTER_ACKS) void kill()
        } else refused++
      }
    }),
  )
  await kill()
  await cluster.lb.waitForStatus(victim, 'DOWN', 5000)
  t.log(
    `${storage}: killed ${victim} (home of ${homes.get(victim)} of ${CLIENTS} sessions) after ${KILL_AFTER_ACKS} acknowledged writes; ${acks} acknowledged, ${refused} not`,
  )
  t.true(acks > KILL_AFTER_ACKS, 'writes went on after the kill')

  const lost: string[] = []
  for (const { client, id, home } of clients) {
    const answer = await client.ok('/read')
    if (answer.node === victim) lost.push(`${id.slice(0, 8)} answered by the killed server`)
    if (answer.id !== id) lost.push(`${id.slice(0, 8)} (home ${home}) came back as ${show(answer.id)} from ${answer.node}`)
    for (const [key, value] of acked.get(id)!) {
      if (answer.data?.[key] !== value)
        lost.push(`${id.slice(0, 8)} (home ${home}) ${key}: acknowledged ${value}, ${answer.node} serves ${show(answer.data?.[key])}`)
    }
    // And the server that took it over keeps writing it.
    const after = await client.ok('/set?key=after&value=1')
    if (after.data?.['after'] !== 1 || after.data['k0'] !== 0) lost.push(`${id.slice(0, 8)}: a write after the fail-over answered ${show(after.data)}`)
  }
  t.deepEqual(lost, [], 'every acknowledged write is served by the servers left')
  const report = await ledger.verify(cluster.storage)
  t.deepEqual(report.missing, [], 'and the storage holds every acknowledged write')
}

/**
 * (b) Fail-over and fail-back with sticky balancing on the session cookie, through HAProxy's
 * runtime API (maint, then ready): no stale read, no reverted value.
 */
async function failOverAndBack(t: ExecutionContext, storage: ClusterStorage): Promise<void> {
  const cluster = await startCluster(t, { storage, balance: STICKY })
  const client = cluster.client()
  // What each server answered, step by step: logged, so that a failure shows the whole story.
  const trace: string[] = []
  const step = async (what: string, path: string): Promise<ClusterAnswer> => {
    const answer = await client.ok(path)
    trace.push(`${what}: ${answer.node} ${show(answer.data)}`)
    return answer
  }
  t.teardown(() => t.log(`${storage}:\n  ${trace.join('\n  ')}`))
  // Coherence failures are collected, not thrown, so one run shows every one of them.
  const stale: string[] = []
  const expect = (actual: unknown, wanted: unknown, what: string): void => {
    if (show(actual) !== show(wanted)) stale.push(`${what}: ${show(actual)}, expected ${show(wanted)}`)
  }
  const created = await step('create', '/set?key=start&value=0')
  const id = created.id!
  const a = (await step('read (home A)', '/read')).node

  const onA = await step('x=1 on A', '/set?key=x&value=1')
  t.is(onA.node, a, 'the session sticks to its home server')
  await cluster.lb.setState(a, 'maint')
  const onB = await step('A in maint: x=2 on B', '/set?key=x&value=2')
  const b = onB.node
  t.not(b, a, 'with its home server in maintenance the session moves')
  await cluster.lb.setState(a, 'ready')

  const back = await step('A ready: read on A', '/read')
  t.is(back.node, a, 'back home after ready')
  expect(back.data?.['x'], 2, `fail-back: after B (${b}) acknowledged x=2, A (${a}) serves x`)

  // A write on A after the fail-back must not bring A's old copy back.
  const y = await step('y=1 on A', '/set?key=y&value=1')
  t.is(y.node, a)
  expect(y.data, { start: 0, x: 2, y: 1 }, `A (${a}) answers its write of y=1 with`)
  await cluster.lb.setState(a, 'maint')
  const onBAgain = await step('A in maint: read on B', '/read')
  t.is(onBAgain.node, b)
  expect(onBAgain.data, { start: 0, x: 2, y: 1 }, `after A wrote y=1, B (${b}) serves`)

  // Interleaved writes of different keys on A and B: every answer shows every write so far.
  const expected: Record<string, number> = { start: 0, x: 2, y: 1 }
  for (let i = 1; i <= 6; i++) {
    const target = i % 2 === 1 ? b : a
    await cluster.lb.setState(a, target === a ? 'ready' : 'maint')
    const answer = await step(`k${i}=${i} on ${target === a ? 'A' : 'B'}`, `/set?key=k${i}&value=${i}`)
    expected[`k${i}`] = i
    t.is(answer.node, target, `k${i} goes to ${target}`)
    expect(answer.data, sorted(expected, answer.data), `${answer.node} answers its write of k${i} with`)
  }
  for (const [state, server, role] of [['ready', a, 'A'] as const, ['maint', b, 'B'] as const]) {
    await cluster.lb.setState(a, state)
    const read = await step(`final read on ${role}`, '/read')
    t.is(read.node, server)
    expect(read.data, sorted(expected, read.data), `after the interleaved writes, ${role} (${server}) serves`)
  }
  const stored = (await cluster.storage.get(id))?.data
  trace.push(`storage: ${show(stored)}`)
  expect(stored, sorted(expected, stored), 'the storage holds')
  t.deepEqual(stale, [], 'no stale read, no reverted value')
}

/** `expected` in the key order of `actual` (so that JSON texts compare), keys missing from `actual` last. */
function sorted(expected: Record<string, unknown>, actual: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(actual ?? {})) if (key in expected) out[key] = expected[key]
  for (const key of Object.keys(expected)) if (!(key in out)) out[key] = expected[key]
  return out
}

/** One increment through the balancer: the value `session.update` returned, or the failure. */
async function increment(client: ClusterClient): Promise<ClusterReply> {
  return client.get('/incr?key=n')
}

/**
 * (c) Round robin, no affinity: a counter incremented with `session.update` ends at exactly
 * the number of acknowledged increments, and every read sees the client's own last write.
 */
async function roundRobinCounter(t: ExecutionContext, storage: ClusterStorage): Promise<void> {
  const cluster = await startCluster(t, { storage, balance: 'roundrobin' })

  // One client, sequential: each answer is the next number, each read (on the next server) sees it.
  const SEQUENTIAL = 30
  const solo = cluster.client()
  const soloProblems: string[] = []
  for (let i = 1; i <= SEQUENTIAL; i++) {
    const reply = await increment(solo)
    if (reply.status !== 200 || reply.body.value !== i) soloProblems.push(`increment ${i}: ${reply.status} ${show(reply.body)}`)
    const read = await solo.ok('/read')
    if (read.data?.['n'] !== i) soloProblems.push(`read after increment ${i} on ${read.node}: n=${show(read.data?.['n'])}`)
  }
  t.deepEqual(soloProblems, [], 'sequential increments from one client')
  t.deepEqual(await everyServer(solo), { a: SEQUENTIAL, b: SEQUENTIAL, c: SEQUENTIAL }, 'every server reads the final count')

  // Several clients at once, each on its own session, each sequential.
  const CLIENTS = 4
  const EACH = 15
  const clients = Array.from({ length: CLIENTS }, () => cluster.client())
  const problems: string[] = []
  await Promise.all(
    clients.map(async (client, c) => {
      for (let i = 1; i <= EACH; i++) {
        const reply = await increment(client)
        if (reply.status !== 200 || reply.body.value !== i) problems.push(`client ${c} increment ${i}: ${reply.status} ${show(reply.body)}`)
        const read = await client.ok('/read')
        if (read.data?.['n'] !== i) problems.push(`client ${c} read after increment ${i} on ${read.node}: n=${show(read.data?.['n'])}`)
      }
    }),
  )
  t.deepEqual(problems, [], 'concurrent clients, each on its own session')
  for (const client of clients) t.deepEqual(await everyServer(client), { a: EACH, b: EACH, c: EACH })

  // A few increments at once on one session (each request on another server): none is lost.
  const ROUNDS = 5
  const AT_ONCE = 3
  const shared = cluster.client()
  const first = await increment(shared)
  t.is(first.body.value, 1, show(first.body))
  const id = first.body.id!
  const values: number[] = [1]
  const unexpected: string[] = []
  // Per round, which server returned which value: logged, so that a lost update shows where.
  const rounds: string[] = []
  let conflicts = 0
  for (let round = 0; round < ROUNDS; round++) {
    const replies = await Promise.all(Array.from({ length: AT_ONCE }, () => increment(shared)))
    rounds.push(replies.map((reply) => `${reply.body.node}:${reply.status === 200 ? show(reply.body.value) : reply.status}`).join(' '))
    for (const reply of replies) {
      if (reply.status === 200 && typeof reply.body.value === 'number') values.push(reply.body.value)
      else if (reply.status === 409 && reply.body.error === 'SESSION_CONFLICT') conflicts++
      else unexpected.push(`${reply.status} ${show(reply.body)}`)
    }
  }
  const record = await cluster.storage.get(id)
  t.log(
    `${storage}: ${values.length} of ${1 + ROUNDS * AT_ONCE} increments on one session acknowledged, ${conflicts} SESSION_CONFLICT; ` +
      `rounds of ${AT_ONCE} at once (server:value): ${rounds.join(' | ')}; the storage then holds n=${show(record?.data['n'])} at version ${show(record?.version)}`,
  )
  t.deepEqual(unexpected, [], 'an increment either lands or fails with SESSION_CONFLICT')
  t.true(values.length >= 1 + ROUNDS, 'at least one increment of each round lands')
  t.deepEqual(
    [...values].sort((x, y) => x - y),
    Array.from({ length: values.length }, (_, i) => i + 1),
    'the acknowledged increments returned 1, 2, … each once (a value returned twice is a lost update)',
  )
  // Concurrent answers reach the jar in any order, so its cookie may carry an earlier version
  // than the last write's (a browser keeps whichever Set-Cookie came last); one more increment,
  // alone, sees every one of them and gives the client the newest version to read at.
  const last = await increment(shared)
  t.is(last.body.value, values.length + 1, `the increment after the concurrent ones: ${last.status} ${show(last.body)}`)
  const final = values.length + 1
  t.deepEqual(await everyServer(shared), { a: final, b: final, c: final }, 'the counter ends at the number of acknowledged increments')
}

/** `n` as each server reads it for `client` (round robin: three reads reach the three servers). */
async function everyServer(client: ClusterClient): Promise<Record<string, unknown>> {
  const seen: Record<string, unknown> = {}
  for (let i = 0; i < 3; i++) {
    const read = await client.ok('/read')
    seen[read.node] = read.data?.['n']
  }
  return Object.fromEntries(Object.entries(seen).sort())
}

/**
 * (d), (e) Logout (destroy) or renew on one server, the old cookie replayed on the others, which
 * had the session cached: refused (a new, empty session) by the time `trustCacheFor` and a
 * margin have passed; with a Redis bus, on the very first request.
 */
async function revokedElsewhere(t: ExecutionContext, storage: ClusterStorage, kind: 'destroy' | 'renew', bus: boolean): Promise<void> {
  const cluster = await startCluster(t, { storage, balance: 'roundrobin', bus })
  const client = cluster.client()
  const created = await client.ok('/set?key=user&value=42')
  const oldId = created.id!
  // Round robin: three reads put (and freshly validate) the session in every server's cache.
  const readers = new Set<string>()
  for (let i = 0; i < 3; i++) {
    const read = await client.ok('/read')
    t.is(read.data?.['user'], 42)
    readers.add(read.node)
  }
  t.is(readers.size, 3, 'every server has the session cached')

  const oldCookie = client.cookie
  const done = await client.ok(`/${kind}`)
  const start = performance.now()
  const revoker = done.node

  const firstRefused = new Map<string, number>()
  const servedOld: string[] = []
  const other: string[] = []
  let firstReply: ClusterAnswer | undefined
  const deadline = DEFAULT_TRUST_CACHE_FOR_S * 1000 + REVOCATION_MARGIN_MS
  let extraRound = 3
  while (since(start) <= deadline && extraRound > 0) {
    const reply = await client.replay(oldCookie)
    const at = since(start)
    firstReply ??= reply.body
    const refused = reply.status === 200 && reply.body.isNew === true && show(reply.body.data) === '{}'
    const node = reply.body.node
    if (reply.status !== 200) other.push(`${node} at ${at} ms: ${reply.status} ${show(reply.body)}`)
    else if (refused) {
      if (!firstRefused.has(node)) firstRefused.set(node, at)
    } else servedOld.push(`${node} at ${at} ms${firstRefused.has(node) ? ' (after refusing it)' : ''}: ${show(reply.body.data)}`)
    // Once every server has refused, one more round to see that none takes it back.
    if (firstRefused.size === 3) extraRound--
    await sleep(REPLAY_EVERY_MS)
  }
  const times = [...firstRefused].map(([node, at]) => `${node}${node === revoker ? ` (the ${kind} there)` : ''} ${at} ms`).join(', ')
  t.log(`${storage}${bus ? ' with a Redis bus' : ''}: ${kind} on ${revoker}; the old cookie first refused by ${times || 'no server'}`)
  if (servedOld.length > 0) {
    const last = servedOld.at(-1)!
    t.log(`${servedOld.length} replays were served the old session; the first: ${servedOld[0]!}; the last: ${last}`)
  }
  t.deepEqual(other, [], 'every replay is answered')
  t.is(await cluster.storage.get(oldId), undefined, 'the old id is gone from the storage')
  if (kind === 'renew') {
    const newId = done.id!
    t.not(newId, oldId)
    for (let i = 0; i < 3; i++) {
      const read = await client.ok('/read')
      t.is(read.id, newId, `the renewed cookie works on ${read.node}`)
      t.is(read.data?.['user'], 42, `with its data, on ${read.node}`)
    }
  } else {
    t.is(client.jar.get('sid'), undefined, 'the destroying answer cleared the cookie')
  }

  // The bounds last, so that a run today (before the coherence core) checks all the rest.
  t.false(
    servedOld.some((line) => line.includes('after refusing')),
    'a server that refused the old cookie never serves it again',
  )
  if (bus) {
    t.is(firstReply?.isNew, true, `with a bus, the very first replay is refused (it was answered by ${firstReply?.node}: ${show(firstReply)})`)
    t.deepEqual(servedOld, [], 'with a bus, no replay is served the old session')
  } else {
    t.is(
      firstRefused.size,
      3,
      `every server refuses the old cookie within trustCacheFor (${DEFAULT_TRUST_CACHE_FOR_S} s) + ${REVOCATION_MARGIN_MS} ms; refused by: ${times || 'none'}`,
    )
  }
}

for (const storage of ['mysql', 'dynamodb'] as const) {
  const clusterOf = await clusterTest(storage, false)
  const withBus = await clusterTest(storage, true)
  clusterOf(`${storage}: (a) SIGKILL a backend: every acknowledged write is served by the others`, (t) => killABackend(t, storage))
  clusterOf(`${storage}: (b) maint and back (sticky): no stale read, no reverted value`, (t) => failOverAndBack(t, storage))
  clusterOf(`${storage}: (c) round robin: session.update counts exactly, every read sees its own last write`, (t) => roundRobinCounter(t, storage))
  clusterOf(`${storage}: (d) destroy on one, old cookie on another: refused within trustCacheFor`, (t) => revokedElsewhere(t, storage, 'destroy', false))
  withBus(`${storage}: (d) destroy on one, old cookie on another, with a Redis bus: refused at once`, (t) => revokedElsewhere(t, storage, 'destroy', true))
  clusterOf(`${storage}: (e) renew on one, old id on another: refused within trustCacheFor`, (t) => revokedElsewhere(t, storage, 'renew', false))
  withBus(`${storage}: (e) renew on one, old id on another, with a Redis bus: refused at once`, (t) => revokedElsewhere(t, storage, 'renew', true))
}
