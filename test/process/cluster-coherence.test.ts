/**
 * The acceptance tests of cluster coherence: three server processes (each its own SessionManager
 * on default options, a signed CookieIdentity) on one shared table, behind a real HAProxy; once
 * on MariaDB (MySQLStorage) and once on DynamoDB (DynamoDBStorage on dynalite). Everything runs
 * on loopback with fixed counts; every process is stopped at the end, whatever happened.
 *
 * Scenario (a), a killed backend, is here; (b) to (e) (fail-over and fail-back, round robin
 * counters with session.update, revocation on other processes) join it with the versioned cache.
 */
import test, { type ExecutionContext } from 'ava'
import { AckLedger } from '../helpers/ack-ledger.js'
import { startCluster, STICKY, type ClusterClient, type ClusterReply, type ClusterStorage } from '../helpers/cluster.js'
import { probeHaproxy } from '../helpers/haproxy.js'
import { MYSQL_URL, probeTcp, REDIS_URL, serviceTest } from '../helpers/services.js'

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

for (const storage of ['mysql', 'dynamodb'] as const) {
  const clusterOf = await clusterTest(storage, false)
  clusterOf(`${storage}: (a) SIGKILL a backend: every acknowledged write is served by the others`, (t) => killABackend(t, storage))
}
