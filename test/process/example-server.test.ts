import test from 'ava'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const STARTUP_LIMIT_MS = 30_000

interface RunningServer {
  readonly url: string
  readonly port: string
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>
}

/** Runs a TypeScript file with tsx in a child process, from the repository root. */
function runTs(file: string, args: readonly string[], env: Record<string, string>): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', file, ...args], { cwd: ROOT, env: { ...process.env, ...env } })
}

/** Output of a child process until it exits, and its exit code. */
async function finish(child: ChildProcessWithoutNullStreams): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout, stderr }
}

/** Starts the demo on a free port and resolves once it printed its address. */
function startServer(t: import('ava').ExecutionContext, dataDir: string): Promise<RunningServer> {
  const child = runTs('examples/server.ts', [], { PORT: '0', SESSION_DATA_DIR: dataDir, SESSION_KEYS: 'a-test-signing-key-of-at-least-32-characters' })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  const exited = once(child, 'exit') as Promise<[number | null]>
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => reject(new Error(`the demo did not start within ${STARTUP_LIMIT_MS} ms:\n${output}`)), STARTUP_LIMIT_MS)
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /on (http:\/\/127\.0\.0\.1:(\d+))/.exec(output)
      if (match === null) return
      clearTimeout(timer)
      resolve({
        url: match[1]!,
        port: match[2]!,
        async stop() {
          child.kill('SIGTERM')
          const [code] = await exited
          return code
        },
      })
    })
    void exited.then(([code]) => {
      clearTimeout(timer)
      reject(new Error(`the demo exited with code ${code} before it listened:\n${output}`))
    })
  })
}

function cookieHeader(jar: Array<[string, string]>): string {
  return jar.map(([name, value]) => `${name}=${value}`).join('; ')
}

test('npm start demo: the seeds client works, and sessions survive a restart of the server', async (t) => {
  const folder = await mkdtemp(join(tmpdir(), 'csm-demo-'))
  t.teardown(() => rm(folder, { recursive: true, force: true }))
  const dataDir = join(folder, 'sessions')
  const jarFile = join(folder, 'jar.json')

  const first = await startServer(t, dataDir)
  const client = await finish(runTs('examples/client.ts', [], { PORT: first.port, COOKIE_JAR: jarFile }))
  t.is(client.stderr, '')
  t.is(client.stdout, 'Set foo = bar\nFetched foo = bar\n')
  t.is(client.code, 0)
  const cookie = cookieHeader(JSON.parse(await readFile(jarFile, 'utf8')) as Array<[string, string]>)
  t.regex(cookie, /^sid=[\w-]{43}; sid\.sig=/)

  // The visit counter and the header identity under /api.
  t.regex(await (await fetch(`${first.url}/`, { headers: { cookie } })).text(), /visited this page 1 time\./)
  t.regex(await (await fetch(`${first.url}/`, { headers: { cookie } })).text(), /visited this page 2 times\./)
  const apiSet = await fetch(`${first.url}/api/set/color/blue`)
  t.is(await apiSet.json(), 'blue')
  const token = apiSet.headers.get('x-session-token')
  t.regex(token ?? '', /^[\w-]{43}$/)
  t.is(apiSet.headers.getSetCookie().length, 0, 'an API client gets a token, not a cookie')
  t.is(await (await fetch(`${first.url}/api/get/color`, { headers: { 'x-session-token': token! } })).json(), 'blue')

  // A second server on the same data directory refuses to start, with a clear message.
  const second = await finish(runTs('examples/server.ts', [], { PORT: '0', SESSION_DATA_DIR: dataDir }))
  t.is(second.code, 1)
  t.regex(second.stderr, /level storage cannot open ".*sessions".*another process/)

  t.is(await first.stop(), 0)

  const restarted = await startServer(t, dataDir)
  // The client's read-only mode, with the cookies it kept: the session survived the restart.
  const reader = await finish(runTs('examples/client.ts', ['read'], { PORT: restarted.port, COOKIE_JAR: jarFile }))
  t.is(reader.stderr, '')
  t.is(reader.stdout, 'Fetched foo = bar\n')
  t.is(reader.code, 0)
  t.is(await (await fetch(`${restarted.url}/get/foo`, { headers: { cookie } })).json(), 'bar')
  t.regex(await (await fetch(`${restarted.url}/`, { headers: { cookie } })).text(), /visited this page 3 times\./)
  t.is(await (await fetch(`${restarted.url}/api/get/color`, { headers: { 'x-session-token': token! } })).json(), 'blue')
  const stranger = await fetch(`${restarted.url}/get/foo`)
  t.is(await stranger.json(), null, 'without the cookie there is no session')
  t.is(await restarted.stop(), 0)
})

test('npm start demo: HEAD / counts no visit and issues no cookie', async (t) => {
  const folder = await mkdtemp(join(tmpdir(), 'csm-demo-'))
  t.teardown(() => rm(folder, { recursive: true, force: true }))
  const server = await startServer(t, join(folder, 'sessions'))
  const stranger = await fetch(`${server.url}/`, { method: 'HEAD' })
  t.is(stranger.status, 200)
  t.deepEqual(stranger.headers.getSetCookie(), [], 'no session is started by a HEAD')

  const first = await fetch(`${server.url}/`)
  t.regex(await first.text(), /visited this page 1 time\./)
  const cookie = first.headers
    .getSetCookie()
    .map((line) => line.split(';')[0])
    .join('; ')
  t.is((await fetch(`${server.url}/`, { method: 'HEAD', headers: { cookie } })).status, 200)
  t.regex(await (await fetch(`${server.url}/`, { headers: { cookie } })).text(), /visited this page 2 times\./, 'the HEAD was not counted')
  t.is((await fetch(`${server.url}/set/foo/bar`, { method: 'HEAD', headers: { cookie } })).status, 405)
  t.is(await (await fetch(`${server.url}/get/foo`, { headers: { cookie } })).json(), null, 'HEAD /set wrote nothing')
  t.is(await server.stop(), 0)
})

test('npm start demo: a port in use is one line naming PORT, and exit code 1', async (t) => {
  const folder = await mkdtemp(join(tmpdir(), 'csm-demo-'))
  t.teardown(() => rm(folder, { recursive: true, force: true }))
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const port = String((taken.address() as import('node:net').AddressInfo).port)
  const demo = await finish(
    runTs('examples/server.ts', [], { PORT: port, SESSION_DATA_DIR: join(folder, 'sessions'), SESSION_KEYS: 'a-test-signing-key-of-at-least-32-characters' }),
  )
  t.is(demo.code, 1)
  t.is(demo.stderr, `port ${port} is in use: set PORT to another port (PORT=0 picks a free one)\n`)
  t.is(demo.stdout, '')
})

test('npm start demo: a signing key that is too short stops it with a message naming SESSION_KEYS', async (t) => {
  const folder = await mkdtemp(join(tmpdir(), 'csm-demo-'))
  t.teardown(() => rm(folder, { recursive: true, force: true }))
  const demo = await finish(
    runTs('examples/server.ts', [], {
      PORT: '0',
      SESSION_DATA_DIR: join(folder, 'sessions'),
      SESSION_KEYS: 'a-test-signing-key-of-at-least-32-characters,short',
    }),
  )
  t.is(demo.code, 1)
  t.regex(demo.stderr, /^SESSION_KEYS: key 2 of 2 has 5 characters; each key needs 32 or more\. Make one with: node -e /)
})

test('npm start demo: unknown routes are 404 and bad keys are 400', async (t) => {
  const folder = await mkdtemp(join(tmpdir(), 'csm-demo-'))
  t.teardown(() => rm(folder, { recursive: true, force: true }))
  const server = await startServer(t, join(folder, 'sessions'))
  t.is((await fetch(`${server.url}/nothing/here`)).status, 404)
  t.is((await fetch(`${server.url}/set/${'k'.repeat(300)}/v`)).status, 400)
  t.is((await fetch(`${server.url}/set/%E0%A4%A/v`)).status, 400)
  const badEncoding = await fetch(`${server.url}/set/%ZZ/b`)
  t.is(badEncoding.status, 400)
  t.deepEqual(await badEncoding.json(), { error: 'BAD_ENCODING', message: 'the key "%ZZ" is not valid percent-encoding (write % as %25)' })
  const badValue = await fetch(`${server.url}/set/a/%ZZ`)
  t.is(badValue.status, 400)
  t.is(((await badValue.json()) as { error: string }).error, 'BAD_ENCODING')
  const longKey = await fetch(`${server.url}/set/${'k'.repeat(300)}/v`)
  t.is(((await longKey.json()) as { error: string }).error, 'SESSION_INVALID_KEY')
  t.is((await fetch(`${server.url}/get/foo`, { method: 'POST' })).status, 405)
  t.is(await server.stop(), 0)
})
