/**
 * Heap of a cache of large sessions, with and without `cacheMaxBytes`: 2,000 sessions of about
 * 60 KB of JSON loaded through the public path from a storage that keeps nothing, so only the
 * cache is counted. Two shapes of data: many small objects (a cart of ~500 items) and one long
 * string. Each variant runs in its own process, under `--expose-gc`.
 *
 *   npx tsx bench/memory/cache-bytes.ts [sessions] [cacheMaxBytes]
 *
 * prints one table row per variant (defaults: 2,000 sessions, 32 MiB).
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { CookieIdentity } from '../../identities/cookie.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import { FakeResponse, fakeRequest } from '../lib/fake-http.js'
import { SyntheticStorage } from '../lib/synthetic-storage.js'

const TARGET = 60 * 1024

/** The JSON text of session `index` in `shape`: about {@link TARGET} bytes, no two sessions sharing strings. */
function json(shape: string, index: number): string {
  if (shape === 'string') return JSON.stringify({ user: index, note: `${index}:`.padEnd(TARGET - 30, 'n') })
  const cart = []
  // The length of JSON.stringify(cart), kept as items are added: `[`, `]` and a comma between items.
  for (let item = 0, length = 2; length < TARGET - 200; item++) {
    const entry = { sku: `SKU-${index}-${item}`, quantity: 1 + (item % 5), price: 9.99 + item, title: `Item ${item} for ${index}` }
    cart.push(entry)
    length += JSON.stringify(entry).length + (item > 0 ? 1 : 0)
  }
  return JSON.stringify({ user: { id: index, name: `User ${index}` }, cart })
}

interface Row {
  shape: string
  cacheMaxBytes: number
  sessions: number
  jsonBytes: number
  heapMiB: number
  cached: number
  cachedBytes: number
}

async function child(shape: string, sessions: number, cacheMaxBytes: number): Promise<Row> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('run with --expose-gc')
  const settle = (): number => {
    for (let i = 0; i < 4; i++) gc()
    return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
  }
  let current = 0
  const storage = new SyntheticStorage({ makeJson: () => json(shape, current) })
  const manager = new SessionManager({
    storage,
    cacheLimit: 100_000,
    ...(cacheMaxBytes > 0 ? { cacheMaxBytes } : {}),
    identities: [new CookieIdentity({ name: 'sid' })],
  })
  const res = new FakeResponse()
  const before = settle()
  for (current = 0; current < sessions; current++) {
    const loaded = await manager.load(fakeRequest(`sid=${generateId()}`), res)
    if (loaded.isNew) throw new Error('a session was not loaded')
  }
  const after = settle()
  const stats = manager.stats()
  return {
    shape,
    cacheMaxBytes,
    sessions,
    jsonBytes: json(shape, 0).length,
    heapMiB: (after - before) / 2 ** 20,
    cached: stats.cached,
    cachedBytes: stats.cachedBytes,
  }
}

function run(args: string[]): Promise<Row> {
  return new Promise((resolve, reject) => {
    const proc = fork(fileURLToPath(import.meta.url), ['child', ...args], { execArgv: ['--expose-gc', '--import', 'tsx'] })
    proc.once('message', (row) => resolve(row as Row))
    proc.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`child exited with ${code}`))))
  })
}

if (process.argv[2] === 'child') {
  const [shape = 'objects', sessions = '2000', maxBytes = '0'] = process.argv.slice(3)
  void child(shape, Number(sessions), Number(maxBytes)).then((row) => process.send!(row, () => process.exit(0)))
} else {
  const sessions = process.argv[2] ?? '2000'
  const maxBytes = process.argv[3] ?? String(32 * 2 ** 20)
  console.log('| data | cacheMaxBytes | sessions loaded | JSON per session | heap growth | sessions cached | counted bytes |')
  console.log('|---|---|---|---|---|---|---|')
  for (const shape of ['objects', 'string']) {
    for (const bound of ['0', maxBytes]) {
      const row = await run([shape, sessions, bound])
      const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`
      console.log(
        `| ${row.shape === 'objects' ? 'a cart of small objects' : 'one long string'} | ${row.cacheMaxBytes === 0 ? 'none' : mib(row.cacheMaxBytes)} | ${row.sessions} | ${(row.jsonBytes / 1024).toFixed(1)} KiB | ${row.heapMiB.toFixed(1)} MiB | ${row.cached} | ${row.cachedBytes === 0 ? '—' : mib(row.cachedBytes)} |`,
      )
    }
  }
}
