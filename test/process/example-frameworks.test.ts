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
