/**
 * The seeds' client, against the `npm start` demo: sets foo = bar, then fetches it back with
 * the session cookie, like a browser would. The cookies are kept in a file between runs, so
 * `read` can show that the session survived a restart of the server:
 *
 *   npx tsx examples/client.ts        # prints "Set foo = bar" and "Fetched foo = bar"
 *   # stop the server (Ctrl-C) and start it again (npm start), then:
 *   npx tsx examples/client.ts read   # read only, with the kept cookie: "Fetched foo = bar"
 *
 * Modes: (none) set then read; `write` set only; `read` read only (writes nothing).
 * Environment: PORT (default 3000); COOKIE_JAR, the file the cookies are kept in (default
 * ./data/client-cookies.json).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

const MODES = ['both', 'write', 'read'] as const
type Mode = (typeof MODES)[number]

const mode = (process.argv[2] ?? 'both') as Mode
if (!MODES.includes(mode)) {
  console.error(`usage: npx tsx examples/client.ts [write|read] (not ${JSON.stringify(process.argv[2])})`)
  process.exit(2)
}
const base = `http://127.0.0.1:${process.env['PORT'] ?? 3000}`
const jarFile = resolve(process.env['COOKIE_JAR'] ?? 'data/client-cookies.json')

/** name → value of the cookies the server set, sent back on every request. */
const jar = new Map<string, string>(existsSync(jarFile) ? (JSON.parse(readFileSync(jarFile, 'utf8')) as Array<[string, string]>) : [])

async function request(path: string): Promise<unknown> {
  const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
  const response = await fetch(`${base}/${path}`, { headers: cookie === '' ? {} : { cookie } })
  for (const line of response.headers.getSetCookie()) {
    const [pair = ''] = line.split(';')
    const separator = pair.indexOf('=')
    if (separator > 0) jar.set(pair.slice(0, separator).trim(), pair.slice(separator + 1).trim())
  }
  if (!response.ok) throw new Error(`GET /${path} answered ${response.status}: ${await response.text()}`)
  return response.json()
}

try {
  if (mode === 'read' && jar.size === 0) console.warn(`no cookies kept in ${jarFile}: run the client without "read" first`)
  if (mode !== 'read') {
    await request('set/foo/bar')
    console.log('Set foo = bar')
  }
  if (mode !== 'write') console.log('Fetched foo =', await request('get/foo'))
  mkdirSync(dirname(jarFile), { recursive: true })
  writeFileSync(jarFile, JSON.stringify([...jar]))
} catch (err) {
  console.error(`client failed against ${base}: ${(err as Error).message}${(err as Error).cause ? ` (${String((err as Error).cause)})` : ''}`)
  process.exit(1)
}
