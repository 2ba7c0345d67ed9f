import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { adminPool, closeAdmin, dropTable, uniqueTable } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))

mysqlTest('cluster example: sessions stick to a worker and survive its death through MySQL', async (t) => {
  const table = uniqueTable('cluster_test')
  t.teardown(async () => {
    await dropTable(table)
    await closeAdmin()
  })
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/cluster.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', WORKERS: '2', MYSQL_URL, SESSION_TABLE: table, SESSION_KEYS: 'a-test-signing-key-of-at-least-32-characters' },
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let output = ''
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the cluster did not start:\n${output}`)), 30_000)
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /behind (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    })
  })

  let cookie = ''
  const visit = async (path = '/'): Promise<{ worker: number; visits: number }> => {
    const response = await fetch(url + path, { headers: { cookie } })
    const issued = response.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ')
    if (issued !== '') cookie = issued
    return (await response.json()) as { worker: number; visits: number }
  }
  const first = await visit()
  t.is(first.visits, 1)
  for (let i = 2; i <= 4; i++) t.deepEqual(await visit(), { worker: first.worker, visits: i }, 'the same worker serves the session')

  await fetch(`${url}/crash`, { headers: { cookie } }).then((response) => response.text())
  const afterCrash = await visit()
  t.not(afterCrash.worker, first.worker, 'another worker took the session over')
  t.is(afterCrash.visits, 5, 'from MySQL, with nothing lost')

  const [rows] = await adminPool().query(`SELECT COUNT(*) AS n FROM \`${table}\``)
  t.is((rows as Array<{ n: number }>)[0]!.n, 1)

  child.kill('SIGTERM')
  const [code] = (await once(child, 'exit')) as [number | null]
  t.is(code, 0, output)
})
