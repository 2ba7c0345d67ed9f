import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { closeAdmin, dropTable, uniqueTable } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))

mysqlTest('cluster example: a client that aborts its upload does not bring the balancer down', async (t) => {
  const table = uniqueTable('cluster_abort')
  t.teardown(async () => {
    await dropTable(table)
    await closeAdmin()
  })
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/cluster.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', WORKERS: '1', MYSQL_URL, SESSION_TABLE: table, SESSION_KEYS: 'a-test-signing-key-of-at-least-32-characters' },
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

  // Announce a 100-byte body, send 10 bytes, and hang up: the balancer is still reading it.
  const socket = connect(Number(url.port), url.hostname)
  await once(socket, 'connect')
  socket.write('POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789')
  // A request on another connection, answered through a worker, takes many turns of the
  // balancer's event loop: by then it has parsed the partial request and is waiting for its body.
  const before = await fetch(url)
  t.is(before.status, 200)
  socket.destroy()
  await once(socket, 'close')

  const after = await fetch(url)
  t.is(after.status, 200, `the balancer still answers:\n${output}`)
  t.is(((await after.json()) as { visits: number }).visits, 1)

  child.kill('SIGTERM')
  const [code] = (await once(child, 'exit')) as [number | null]
  t.is(code, 0, output)
})
