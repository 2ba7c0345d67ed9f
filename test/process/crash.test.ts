import test, { type ExecutionContext } from 'ava'
import { Agent } from 'node:http'
import { startFixtureServer } from '../helpers/child-server.js'
import { levelTarget, mysqlTarget, type DurableTarget } from '../helpers/durable-storages.js'
import { closeAdmin } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'
import { Workload } from '../helpers/workload.js'

// Crash durability: a server process takes writes (answering only once the storage acknowledged
// them), its clients record every acknowledged write in a ledger, and the server is killed with
// SIGKILL in the middle of the traffic. A new process then opens the storage and must find every
// acknowledged write, and no destroyed or renewed-away session.

const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))
test.after.always(closeAdmin)

const VISITORS = 24
const KILL_AFTER_ACKS = 600

async function crashAndVerify(t: ExecutionContext, target: DurableTarget): Promise<void> {
  const server = await startFixtureServer(target.env)
  t.teardown(() => server.kill())
  const agent = new Agent({ keepAlive: true, maxSockets: VISITORS })
  t.teardown(() => agent.destroy())
  const workload = new Workload(agent, server.port, VISITORS)
  let killedAt: number | undefined
  const traffic = workload.closedLoop(() => {
    if (killedAt === undefined && workload.counters.acknowledgedWrites >= KILL_AFTER_ACKS) {
      killedAt = workload.counters.acknowledgedWrites
      server.child.kill('SIGKILL')
    }
    return killedAt !== undefined
  })
  await traffic
  const ended = await server.exited
  t.is(ended.signal, 'SIGKILL')
  const inFlight = Object.entries(workload.counters.errors)
    .filter(([kind]) => kind.startsWith('network'))
    .reduce((sum, [, n]) => sum + n, 0)
  t.log({ ...workload.counters, killedAt, inFlightAtKill: inFlight })
  t.false('stale read' in workload.counters.errors, 'no read ever showed less than what was acknowledged')
  t.true(workload.counters.hostile > 0)

  const storage = await target.reopen()
  try {
    const report = await workload.ledger.verify(storage)
    t.log({
      sessionsChecked: report.sessions,
      keysChecked: report.keys,
      destroyedChecked: report.destroyed,
      missing: report.missing.length,
      resurrected: report.resurrected.length,
      inDoubt: report.inDoubt,
    })
    t.true(report.keys >= 100)
    t.deepEqual(report.missing, [], 'zero acknowledged writes lost')
    t.deepEqual(report.resurrected, [], 'no destroyed or renewed-away session came back')
  } finally {
    await storage.close()
  }
}

test('LevelDB: SIGKILL mid-traffic loses no acknowledged write', async (t) => {
  await crashAndVerify(t, await levelTarget(t))
})

mysqlTest('MariaDB: SIGKILL mid-traffic loses no acknowledged write', async (t) => {
  await crashAndVerify(t, mysqlTarget(t, 'sessions_crash'))
})
