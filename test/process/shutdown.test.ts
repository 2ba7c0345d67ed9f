import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { Agent } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LevelStorage } from '../../storages/level.js'
import { AckLedger } from '../helpers/ack-ledger.js'
import { startFixtureServer } from '../helpers/child-server.js'
import { levelTarget, mysqlTarget, type DurableTarget } from '../helpers/durable-storages.js'
import { closeAdmin } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'
import { httpGet, SessionClient } from '../helpers/session-client.js'

// Graceful shutdown: on SIGTERM the server stops accepting connections, lets the requests in
// progress finish, flushes the writes still pending with manager.close(), and exits 0. Nothing it
// accepted is lost: checked by a new process reading the storage afterwards.

const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))
test.after.always(closeAdmin)

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Whether a TCP connection to the port is refused (nobody listens any more). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'))
  })
}

/** Resolves once the fixture server on `port` has `count` requests in progress. */
async function arrived(agent: Agent, port: number, count: number): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const { inProgress } = JSON.parse((await httpGet(agent, port, '/stats')).body) as { inProgress: number }
    if (inProgress >= count) return
    if (Date.now() > deadline) throw new Error(`${inProgress} of ${count} requests reached the server within 30 s`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function shutdownKeepsPendingWrites(t: ExecutionContext, target: DurableTarget): Promise<void> {
  // Every storage call waits 100 ms, so writes are surely pending when SIGTERM arrives.
  const server = await startFixtureServer({ ...target.env, SLOW_MS: '100' })
  t.teardown(() => server.kill())
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  t.teardown(() => agent.destroy())
  const ledger = new AckLedger()
  const clients = Array.from({ length: 20 }, () => new SessionClient(agent, server.port))
  for (const { status, answer } of await Promise.all(clients.map((client) => client.get('/set?key=n&value=1')))) {
    t.is(status, 200)
    ledger.acknowledged(answer.id!, 'n', 1)
  }
  // Writes queued and answered 202 at once: pending in the server's write queue.
  const later = await Promise.all(clients.map((client) => client.get('/set-later?key=later&value=2')))
  for (const [i, { status, answer }] of later.entries()) {
    t.is(status, 202, `client ${i}`)
    ledger.acknowledged(answer.id!, 'later', 2)
  }
  // Requests in progress when the signal arrives: each waits for its own (slow) write.
  const inProgress = clients.map((client) => client.get('/set?key=inflight&value=3'))
  // SIGTERM once all of them reached the server: one still on its way when the server closes its
  // idle connections would fail (a fixed 50 ms was not always enough on a busy machine).
  await arrived(agent, server.port, clients.length)
  server.child.kill('SIGTERM')
  await server.next('closing')
  t.true(await refused(server.port), 'no new connection is accepted once closing')
  const answers = await Promise.all(inProgress)
  for (const [i, { status, answer }] of answers.entries()) {
    t.is(status, 200, 'a request in progress when SIGTERM arrived is finished')
    ledger.acknowledged(answer.id!, 'inflight', 3)
    t.is(answer.id, later[i]!.answer.id)
  }
  const closed = await server.next('closed')
  const { code } = await server.exited
  t.is(code, 0)
  t.is(closed.stats?.['pendingWrites'], 0)
  t.is(closed.stats?.['failures'], 0)
  t.deepEqual(closed.unexpected, [])
  const storage = await target.reopen()
  try {
    const report = await ledger.verify(storage)
    t.is(report.keys, 60)
    t.deepEqual(report.missing, [], 'every accepted write was flushed before exit')
  } finally {
    await storage.close()
  }
}

test('SIGTERM on the fixture server (LevelDB): stops accepting, finishes requests, flushes pending writes, exits 0', async (t) => {
  await shutdownKeepsPendingWrites(t, await levelTarget(t))
})

mysqlTest('SIGTERM on the fixture server (MariaDB): stops accepting, finishes requests, flushes pending writes, exits 0', async (t) => {
  await shutdownKeepsPendingWrites(t, mysqlTarget(t, 'sessions_shutdown'))
})

test('SIGTERM on examples/server.ts under load: every answered write is in its LevelDB, and it exits 0', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'csm-shutdown-example-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', SESSION_DATA_DIR: dataDir, SESSION_KEYS: 'shutdown-test-signing-key-0123456789abcdef' },
  })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  let output = ''
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`examples/server.ts did not start:\n${output}`)), 30_000)
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    })
  })
  const agent = new Agent({ keepAlive: true, maxSockets: 50 })
  t.teardown(() => agent.destroy())
  // 200 writes from 50 visitors, SIGTERM while they are in flight.
  const answered: Array<{ id: string; key: string; value: string }> = []
  let failedToConnect = 0
  const visitors = Array.from({ length: 50 }, () => new SessionClient(agent, port))
  const traffic = Promise.all(
    visitors.map(async (visitor, v) => {
      for (let i = 0; i < 4; i++) {
        const key = `k${i}`
        const value = `v${v}-${i}`
        try {
          const response = await httpGet(agent, port, `/set/${key}/${value}`, visitor.jar.header() === '' ? {} : { cookie: visitor.jar.header() })
          visitor.jar.absorb(response.setCookie)
          if (response.status === 200) answered.push({ id: visitor.jar.get('sid')!, key, value })
        } catch {
          failedToConnect++
        }
      }
    }),
  )
  while (answered.length < 60) await new Promise((resolve) => setTimeout(resolve, 5))
  child.kill('SIGTERM')
  await traffic
  const [code] = await exited
  t.is(code, 0)
  t.log({ answered: answered.length, refusedAfterSigterm: failedToConnect })
  const storage = new LevelStorage({ location: dataDir, cleanupInterval: 0 })
  try {
    for (const { id, key, value } of answered) t.is((await storage.get(id))?.data[key], value, `${key} of ${id.slice(0, 8)}`)
  } finally {
    await storage.close()
  }
})
