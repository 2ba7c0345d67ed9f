import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { CookieJar, send } from '../helpers/http-client.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const STARTUP_LIMIT_MS = 30_000
const SESSION_KEYS = 'examples-test-signing-key-0123456789abcdef'

interface RunningExample {
  readonly url: string
  /** SIGTERM, then how the process ended. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Run `examples/<file>` with tsx on a port the system picks; resolves once it printed its address. */
function startExample(t: ExecutionContext, file: string): Promise<RunningExample> {
  const child = spawn(process.execPath, ['--import', 'tsx', `examples/${file}`], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', SESSION_KEYS, MYSQL_URL: '' },
  })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => reject(new Error(`${file} did not start within ${STARTUP_LIMIT_MS} ms:\n${output}`)), STARTUP_LIMIT_MS)
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match === null) return
      clearTimeout(timer)
      resolve({
        url: match[1]!,
        async stop() {
          child.kill('SIGTERM')
          const [code, signal] = await exited
          return { code, signal }
        },
      })
    })
    void exited.then(([code]) => {
      clearTimeout(timer)
      reject(new Error(`${file} exited with code ${code} before it listened:\n${output}`))
    })
  })
}

for (const file of ['express.ts', 'koa.ts', 'fastify.ts', 'hono.ts']) {
  test(`examples/${file}: counter, login with a new id, logout, graceful shutdown`, async (t) => {
    const example = await startExample(t, file)
    const { url } = example
    const jar = new CookieJar()

    t.deepEqual((await send(url, { jar })).json(), { views: 1, user: null })
    const firstId = jar.get('sid')
    t.truthy(firstId)
    t.truthy(jar.get('sid.sig'), 'the cookie is signed')
    t.deepEqual((await send(url, { jar })).json(), { views: 2, user: null })

    const beforeLogin = jar.clone()
    t.deepEqual((await send(`${url}/login?user=ada`, { method: 'POST', jar })).json(), { user: 'ada' })
    t.not(jar.get('sid'), firstId, 'login renews the id')
    t.deepEqual((await send(url, { jar })).json(), { views: 3, user: 'ada' })
    t.deepEqual((await send(url, { jar: beforeLogin })).json(), { views: 1, user: null }, 'the old id no longer works')

    const afterLogin = jar.clone()
    t.deepEqual((await send(`${url}/logout`, { method: 'POST', jar })).json(), { loggedOut: true })
    t.is(jar.get('sid'), undefined, 'logout clears the cookie')
    t.deepEqual((await send(url, { jar: afterLogin })).json(), { views: 1, user: null }, 'the destroyed session does not come back')

    t.deepEqual(await example.stop(), { code: 0, signal: null })
  })
}

test('examples/sealed-cookie.ts: the view counter lives in the sealed cookie alone, read by another process with the same keys; logout clears it', async (t) => {
  const example = await startExample(t, 'sealed-cookie.ts')
  const jar = new CookieJar()
  const first = await send(example.url, { jar })
  t.is(first.body, '1 views')
  const sealed = jar.get('session')
  t.regex(sealed ?? '', /^[A-Za-z0-9_-]{60,}$/, 'one opaque base64url value')
  t.notRegex(Buffer.from(sealed ?? '', 'base64url').toString('latin1'), /views/, 'the data cannot be read from the cookie')
  t.is((await send(example.url, { jar })).body, '2 views')
  t.deepEqual(await example.stop(), { code: 0, signal: null })

  // Nothing was kept by the process that stopped: another one with the same keys goes on from the cookie.
  const other = await startExample(t, 'sealed-cookie.ts')
  t.is((await send(other.url, { jar })).body, '3 views')
  const tampered = new CookieJar()
  // The last four characters changed (to AAAA, or BBBB when they already were AAAA).
  tampered.store([`session=${sealed!.slice(0, -4)}${sealed!.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`])
  const forged = await send(other.url, { jar: tampered })
  t.is(forged.status, 200)
  t.is(forged.body, '1 views', 'a changed cookie is a new session')
  const logout = await send(`${other.url}/logout`, { method: 'POST', jar })
  t.is(logout.body, 'logged out')
  t.is(jar.get('session'), undefined, 'logout clears the cookie')
  t.is((await send(other.url, { jar })).body, '1 views')
  t.deepEqual(await other.stop(), { code: 0, signal: null })
})

/** Run `examples/<file>` until it exits, for at most {@link STARTUP_LIMIT_MS}; its exit code and output. */
async function runToExit(t: ExecutionContext, file: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', `examples/${file}`], { cwd: ROOT, env: { ...process.env, PORT: '0', SESSION_KEYS, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const limit = setTimeout(() => child.kill('SIGKILL'), STARTUP_LIMIT_MS)
  t.teardown(() => clearTimeout(limit))
  const [code, signal] = await exited
  clearTimeout(limit)
  t.is(signal, null, `${file} did not exit by itself within ${STARTUP_LIMIT_MS} ms:\n${stdout}${stderr}`)
  return { code, stdout, stderr }
}

for (const file of ['express.ts', 'koa.ts', 'fastify.ts', 'hono.ts', 'server.ts']) {
  test(`examples/${file}: a MYSQL_URL on a port nobody listens on stops it before it listens, exit code 1 and the reason on stderr`, async (t) => {
    const run = await runToExit(t, file, { MYSQL_URL: 'mysql://root@127.0.0.1:1/test' })
    t.is(run.code, 1)
    t.regex(run.stderr, /^cannot start: the mysql storage could not be opened: connect ECONNREFUSED 127\.0\.0\.1:1$/m)
    t.notRegex(run.stdout, /listening|demo on/, 'it never said it was listening')
  })
}

test('examples/sealed-cookie.ts: a key shorter than 32 characters stops it before it listens, exit code 1 and the reason on stderr', async (t) => {
  const run = await runToExit(t, 'sealed-cookie.ts', { SESSION_KEYS: 'too-short' })
  t.is(run.code, 1)
  t.regex(run.stderr, /^SESSION_KEYS: key 1 of 1 has 9 characters; each key needs 32 or more/m)
  t.notRegex(run.stdout, /listening/, 'it never said it was listening')
})

test('examples/logout-everywhere.ts: a password change ends the other devices, the devices page lists the sessions, logout everywhere ends them all', async (t) => {
  const example = await startExample(t, 'logout-everywhere.ts')
  const { url } = example
  const phone = new CookieJar()
  const laptop = new CookieJar()
  const other = new CookieJar()
  t.is((await send(`${url}/login?user=ada&password=wrong`, { method: 'POST', jar: phone })).status, 401)
  for (const jar of [phone, laptop]) t.deepEqual((await send(`${url}/login?user=ada&password=lovelace`, { method: 'POST', jar })).json(), { user: 'ada' })
  t.deepEqual((await send(`${url}/login?user=alan&password=turing`, { method: 'POST', jar: other })).json(), { user: 'alan' })

  const devices = (await send(`${url}/devices`, { jar: laptop })).json<Array<{ label: string; thisDevice: boolean }>>()
  t.is(devices.length, 2, "ada's two sessions, not alan's")
  t.deepEqual(devices.map((device) => device.thisDevice).sort(), [false, true])
  const laptopId = laptop.get('sid')!
  t.false(JSON.stringify(devices).includes(laptopId), 'the page shows labels, never session ids')

  const changed = await send(`${url}/password?old=lovelace&new=babbage`, { method: 'POST', jar: laptop })
  t.deepEqual(changed.json(), { ended: 1 })
  t.not(laptop.get('sid'), laptopId, 'the session that changed the password gets a new id')
  t.deepEqual((await send(url, { jar: phone })).json(), { user: null }, 'the phone is logged out')
  t.deepEqual((await send(url, { jar: laptop })).json(), { user: 'ada' })
  t.deepEqual((await send(url, { jar: other })).json(), { user: 'alan' }, "another user's session is untouched")
  t.is((await send(`${url}/devices`, { jar: laptop })).json<unknown[]>().length, 1)

  t.deepEqual((await send(`${url}/login?user=ada&password=babbage`, { method: 'POST', jar: phone })).json(), { user: 'ada' })
  t.deepEqual((await send(`${url}/logout-everywhere`, { method: 'POST', jar: laptop })).json(), { ended: 2 })
  t.is(laptop.get('sid'), undefined, 'this device’s cookie is cleared')
  t.deepEqual((await send(url, { jar: phone })).json(), { user: null })
  t.deepEqual((await send(url, { jar: other })).json(), { user: 'alan' })
  t.deepEqual(await example.stop(), { code: 0, signal: null })
})
