/**
 * Profile one HTTP bench server under load: `tsx bench/profile.ts <server> <route> [seconds]`,
 * e.g. `tsx bench/profile.ts csm-memory read 5`. The server runs with `--cpu-prof`; the
 * profile lands in a temporary folder (path printed) and the functions with the most self
 * time are printed. Open the `.cpuprofile` in Chrome DevTools for the full picture. The load
 * comes from wrk when it is installed (one thread, so the server keeps a core of its own), else
 * from autocannon in this process.
 */
import autocannon from 'autocannon'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cookieHeader, get } from './http/client.js'
import { SERVERS } from './http/run.js'
import { ROUTES, type ServerMessage } from './http/servers/common.js'
import { benchScript, startChild } from './lib/child.js'
import { table } from './lib/table.js'
import { defaultClient, wrkLoad } from './http/wrk.js'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

const [serverName = 'csm-memory', routeName = 'read', secondsText = '5'] = process.argv.slice(2)
const spec = SERVERS.find((server) => server.name === serverName)
const route = ROUTES[routeName as keyof typeof ROUTES]
if (spec === undefined || route === undefined) {
  console.error(`usage: tsx bench/profile.ts <${SERVERS.map((s) => s.name).join('|')}> <${Object.keys(ROUTES).join('|')}> [seconds]`)
  process.exit(2)
}
const seconds = Number(secondsText)
const dir = mkdtempSync(join(tmpdir(), 'csm-bench-profile-'))
const child = await startChild<ServerMessage>(benchScript(spec.script), { readyTimeoutMs: 30_000, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
try {
  const port = child.message.port
  const cookie = cookieHeader((await get(port, ROUTES.write)).setCookie)
  const url = `http://127.0.0.1:${port}${route}`
  const headers: Record<string, string> = route === ROUTES.fresh ? {} : { cookie }
  // wrk when installed (C, one thread: it leaves the server a core of its own), else autocannon in this process.
  const rps =
    defaultClient() === 'wrk'
      ? (await wrkLoad(url, seconds, 32, headers)).rps
      : await autocannon({ url, connections: 32, duration: seconds, headers }).then((result) => result.requests.total / result.duration)
  console.log(`${spec.name} ${route}: ${Math.round(rps)} req/s`)
} finally {
  await child.stop()
}
const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'))
if (file === undefined) throw new Error(`no profile was written to ${dir}`)
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[] }
const total = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0)
const selfTime = new Map<string, number>()
for (const node of profile.nodes) {
  const frame = node.callFrame
  const where = frame.url === '' ? '' : ` ${frame.url.replace(/^.*\/(node_modules\/|work\/main\/)/, '')}:${frame.lineNumber + 1}`
  const key = `${frame.functionName || '(anonymous)'}${where}`
  selfTime.set(key, (selfTime.get(key) ?? 0) + (node.hitCount ?? 0))
}
const top = [...selfTime].sort((a, b) => b[1] - a[1]).slice(0, 30)
console.log(
  table(
    ['function', 'self %'],
    top.map(([name, hits]) => [name, ((100 * hits) / total).toFixed(1)]),
  ),
)
console.log(`\nprofile: ${join(dir, file)}`)
