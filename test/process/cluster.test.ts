import type { ExecutionContext } from 'ava'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { adminPool, closeAdmin, dropTable, uniqueTable } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))

interface RunningCluster {
  readonly url: URL
  readonly table: string
  readonly child: ChildProcessWithoutNullStreams
  output(): string
  /** SIGTERM to the primary; resolves with its exit code. */
  stop(): Promise<number | null>
}

/** Starts examples/cluster.ts on a free port with its own MySQL table, torn down after the test. */
async function startCluster(t: ExecutionContext, workers: number): Promise<RunningCluster> {
  const table = uniqueTable('cluster_test')
  t.teardown(async () => {
    await dropTable(table)
    await closeAdmin()
  })
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/cluster.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', WORKERS: String(workers), MYSQL_URL, SESSION_TABLE: table, SESSION_KEYS: 'a-test-signing-key-of-at-least-32-characters' },
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let output = ''
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const url = await new Promise<URL>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the cluster did not start:\n${output}`)), 30_000)
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /behind (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve(new URL(match[1]!))
      }
    })
  })
  return {
    url,
    table,
    child,
    output: () => output,
    async stop() {
      child.kill('SIGTERM')
      const [code] = (await once(child, 'exit')) as [number | null]
      return code
    },
  }
}

mysqlTest('cluster example: sessions stick to a worker and survive its death through MySQL', async (t) => {
  const cluster = await startCluster(t, 2)
  let cookie = ''
  const visit = async (path = '/'): Promise<{ worker: number; visits: number }> => {
    const response = await fetch(new URL(path, cluster.url), { headers: { cookie } })
    const issued = response.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .join('; ')
    if (issued !== '') cookie = issued
    return (await response.json()) as { worker: number; visits: number }
  }
  const first = await visit()
  t.is(first.visits, 1)
  for (let i = 2; i <= 4; i++) t.deepEqual(await visit(), { worker: first.worker, visits: i }, 'the same worker serves the session')

  await fetch(new URL('/crash', cluster.url), { headers: { cookie } }).then((response) => response.text())
  const afterCrash = await visit()
  t.not(afterCrash.worker, first.worker, 'another worker took the session over')
  t.is(afterCrash.visits, 5, 'from MySQL, with nothing lost')

  const [rows] = await adminPool().query(`SELECT COUNT(*) AS n FROM \`${cluster.table}\``)
  t.is((rows as Array<{ n: number }>)[0]!.n, 1)
  t.is(await cluster.stop(), 0, cluster.output())
})

mysqlTest('cluster example: a client that aborts its upload does not bring the balancer down', async (t) => {
  const cluster = await startCluster(t, 1)
  // Announce a 100-byte body, send 10 bytes, and hang up: the balancer is still reading it.
  const socket = connect(Number(cluster.url.port), cluster.url.hostname)
  await once(socket, 'connect')
  socket.write('POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789')
  // A request on another connection, answered through a worker, takes many turns of the
  // balancer's event loop: by then it has parsed the partial request and is waiting for its body.
  const before = await fetch(cluster.url)
  t.is(before.status, 200)
  socket.destroy()
  await once(socket, 'close')

  const after = await fetch(cluster.url)
  t.is(after.status, 200, `the balancer still answers:\n${cluster.output()}`)
  t.is(((await after.json()) as { visits: number }).visits, 1)
  t.is(await cluster.stop(), 0, cluster.output())
})
