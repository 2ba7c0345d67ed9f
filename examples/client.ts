/**
 * The seeds' client, against the `npm start` demo: sets foo = bar, then fetches it back with
 * the session cookie, like a browser would.
 *
 *   npx tsx examples/client.ts        # prints "Set foo = bar" and "Fetched foo = bar"
 *
 * Environment: PORT (default 3000); COOKIE_JAR, a file to keep the cookies in between runs.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'

const base = `http://127.0.0.1:${process.env['PORT'] ?? 3000}`
const jarFile = process.env['COOKIE_JAR']

/** name → value of the cookies the server set, sent back on every request. */
const jar = new Map<string, string>(jarFile !== undefined && existsSync(jarFile) ? (JSON.parse(readFileSync(jarFile, 'utf8')) as Array<[string, string]>) : [])

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
  await request('set/foo/bar')
  console.log('Set foo = bar')
  console.log('Fetched foo =', await request('get/foo'))
  if (jarFile !== undefined) writeFileSync(jarFile, JSON.stringify([...jar]))
} catch (err) {
  console.error(`client failed against ${base}: ${(err as Error).message}${(err as Error).cause ? ` (${String((err as Error).cause)})` : ''}`)
  process.exit(1)
}
