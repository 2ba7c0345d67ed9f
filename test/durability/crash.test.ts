import test, { type ExecutionContext } from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Storage } from '../../src/types.js'
import { LevelStorage } from '../../storages/level.js'
import { MySQLStorage } from '../../storages/mysql.js'
import { startFixtureServer } from '../helpers/child-server.js'
import { closeAdmin, dropTable, uniqueTable } from '../helpers/mysql.js'
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

async function crashAndVerify(t: ExecutionContext, env: Record<string, string>, reopen: () => Promise<Storage>): Promise<void> {
  const server = await startFixtureServer(env)
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
  const inFlight = Object.entries(workload.counters.errors).filter(([kind]) => kind.startsWith('network')).reduce((sum, [, n]) => sum + n, 0)
  t.log({ ...workload.counters, killedAt, inFlightAtKill: inFlight })
  t.false('stale read' in workload.counters.errors, 'no read ever showed less than what was acknowledged')
  t.true(workload.counters.hostile > 0)

  const storage = await reopen()
  try {
    const report = await workload.ledger.verify(storage)
    t.log({ sessionsChecked: report.sessions, keysChecked: report.keys, destroyedChecked: report.destroyed, missing: report.missing.length, resurrected: report.resurrected.length, inDoubt: report.inDoubt })
    t.true(report.keys >= 100)
    t.deepEqual(report.missing, [], 'zero acknowledged writes lost')
    t.deepEqual(report.resurrected, [], 'no destroyed or renewed-away session came back')
  } finally {
    await storage.close()
  }
}

test('LevelDB: SIGKILL mid-traffic loses no acknowledged write', async (t) => {
  const location = await mkdtemp(join(tmpdir(), 'csm-crash-level-'))
  t.teardown(() => rm(location, { recursive: true, force: true }))
  await crashAndVerify(t, { STORAGE: 'level', LEVEL_LOCATION: location }, async () => {
    const storage = new LevelStorage({ location, cleanupInterval: 0 })
    await storage.open()
    return storage
  })
})

mysqlTest('MariaDB: SIGKILL mid-traffic loses no acknowledged write', async (t) => {
  const table = uniqueTable('sessions_crash')
  t.teardown(() => dropTable(table))
  await crashAndVerify(t, { STORAGE: 'mysql', MYSQL_URI: MYSQL_URL, MYSQL_TABLE: table }, async () => new MySQLStorage({ uri: MYSQL_URL, table }))
})
