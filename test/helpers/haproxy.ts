import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A server's administrative state, as the runtime API's `set server … state` takes it. */
export type HaproxyServerState = 'ready' | 'drain' | 'maint'

/** One backend server: HAProxy's name for it and its port on 127.0.0.1. */
export interface HaproxyBackend {
  /** Name in the config and the runtime API (letters, digits, `-`, `_`). */
  readonly name: string
  /** Port on 127.0.0.1. */
  readonly port: number
}

/** Active HTTP health checks of every backend server. */
export interface HaproxyHealthCheck {
  /** Path checked with GET; a 2xx or 3xx answer is healthy. Default `/health`. */
  readonly path?: string
  /** Milliseconds between checks. Default 200. */
  readonly intervalMs?: number
  /** Failed checks in a row that take a server down. Default 1. */
  readonly fall?: number
  /** Passed checks in a row that bring it back. Default 1. */
  readonly rise?: number
}

/** How requests are spread over the backends. */
export type HaproxyBalance =
  /** Each request to the next server in turn (no affinity at all). */
  | 'roundrobin'
  /**
   * Sticky by the value of one cookie: `balance hash req.cook(<cookie>)` with
   * `hash-type consistent`, so a value always reaches the same server while it is up, only the
   * clients of a server that leaves move, and they come back when it returns. Requests without
   * the cookie go round robin.
   *
   * With `upTo` (one character), only the part of the value before its first `upTo` is hashed
   * (`req.cook(<cookie>),field(1,<upTo>)`): a cookie `<id>.<version>` then keeps its session on
   * one server while the version changes with every write.
   */
  | { readonly stickyCookie: string; readonly upTo?: string }

/** Options of {@link startHaproxy}. */
export interface HaproxyOptions {
  /** The servers, as ports (named `s1`, `s2`, … in order) or as named backends. At least one. */
  readonly backends: readonly (number | HaproxyBackend)[]
  /** Default `'roundrobin'`. */
  readonly balance?: HaproxyBalance
  /** Health checks; default none (a server is up until set otherwise through the runtime API). */
  readonly healthCheck?: HaproxyHealthCheck | false
  /** Connect, client and server timeouts, milliseconds. Default 5000 (connect: 1000). */
  readonly timeoutMs?: number
  /** Most time to wait for HAProxy to start, milliseconds. Default 5000. */
  readonly startTimeoutMs?: number
}

/** One backend server as the runtime API's `show stat` reports it. */
export interface HaproxyServerStatus {
  /** `UP`, `DOWN`, `MAINT`, `DRAIN`, `no check`, or a transition such as `UP 1/2`. */
  readonly status: string
  /** Requests sent to it so far (the `stot` column: sessions). */
  readonly sessions: number
}

/** A running HAProxy; see {@link startHaproxy}. */
export interface Haproxy {
  /** The frontend's port on 127.0.0.1. */
  readonly port: number
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  /** The server names, in config order. */
  readonly servers: readonly string[]
  /** The temporary directory with the config and the runtime API socket (removed by {@link stop}). */
  readonly dir: string
  /** The config file's text. */
  readonly config: string
  /** HAProxy's process id. */
  readonly pid: number
  /** Send one runtime API command; resolves to its answer. */
  command(line: string): Promise<string>
  /** Set a server's administrative state (`set server be/<server> state <state>`); rejects on any answer but success. */
  setState(server: string, state: HaproxyServerState): Promise<void>
  /** Every server's status, by name. */
  status(): Promise<Record<string, HaproxyServerStatus>>
  /** Resolves when `server`'s status starts with `status` (e.g. `'DOWN'`); rejects after `timeoutMs` (default 3000). */
  waitForStatus(server: string, status: string, timeoutMs?: number): Promise<void>
  /** Stop HAProxy (SIGTERM, then SIGKILL after 2 s) and remove {@link dir}. Idempotent. */
  stop(): Promise<void>
}

const NAME = /^[A-Za-z0-9_-]{1,32}$/
const COOKIE_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/

/** The installed HAProxy's version (`2.6.12-1+deb12u4`), or `undefined` when `haproxy` cannot be run. */
export function haproxyVersion(): string | undefined {
  const run = spawnSync('haproxy', ['-v'], { encoding: 'utf8', timeout: 5000 })
  if (run.error !== undefined || run.status !== 0) return undefined
  return /version (\S+)/i.exec(run.stdout)?.[1]
}

/** Rejects unless `haproxy` can be run: the probe for `serviceTest('HAProxy', probeHaproxy)`. */
export async function probeHaproxy(): Promise<void> {
  if (haproxyVersion() === undefined) throw new Error('the haproxy command is not installed (apt-get install haproxy)')
}

/** A free TCP port of 127.0.0.1 (free when this returns; HAProxy binds it right after). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

function positive(value: number | undefined, fallback: number, what: string): number {
  const result = value ?? fallback
  if (!Number.isSafeInteger(result) || result < 1) throw new TypeError(`startHaproxy option "${what}" must be a positive integer, got ${String(value)}`)
  return result
}

/** The config text for `options` on frontend port `port` with its runtime API at `socket`. */
export function haproxyConfig(options: HaproxyOptions, port: number, socket: string): { text: string; servers: string[] } {
  if (!Array.isArray(options.backends) || options.backends.length === 0) throw new TypeError('startHaproxy option "backends" must be a non-empty array')
  const backends = (options.backends as readonly (number | HaproxyBackend)[]).map((b, i): HaproxyBackend =>
    typeof b === 'number' ? { name: `s${i + 1}`, port: b } : b,
  )
  for (const { name, port: p } of backends) {
    if (!NAME.test(name)) throw new TypeError(`startHaproxy backend name must be letters, digits, "-" or "_", got ${JSON.stringify(name)}`)
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new TypeError(`startHaproxy backend "${name}" has an invalid port ${String(p)}`)
  }
  if (new Set(backends.map((b) => b.name)).size !== backends.length) throw new TypeError('startHaproxy backend names must be unique')
  const balance = options.balance ?? 'roundrobin'
  const timeout = positive(options.timeoutMs, 5000, 'timeoutMs')
  let balanceLines: string[]
  if (balance === 'roundrobin') balanceLines = ['  balance roundrobin']
  else if (typeof balance === 'object' && balance !== null && COOKIE_NAME.test(balance.stickyCookie)) {
    const { upTo } = balance
    if (upTo !== undefined && !(typeof upTo === 'string' && /^[.:|_~-]$/.test(upTo)))
      throw new TypeError(`startHaproxy option "balance.upTo" must be one of the characters . : | _ ~ -, got ${JSON.stringify(upTo)}`)
    const sample = upTo === undefined ? `req.cook(${balance.stickyCookie})` : `req.cook(${balance.stickyCookie}),field(1,${upTo})`
    balanceLines = ['  hash-type consistent', `  balance hash ${sample}`]
  } else throw new TypeError('startHaproxy option "balance" must be "roundrobin" or { stickyCookie: <cookie name> }')

  const check = options.healthCheck === undefined || options.healthCheck === false ? undefined : options.healthCheck
  const checkLines: string[] = []
  let serverSuffix = ''
  if (check !== undefined) {
    const path = check.path ?? '/health'
    if (!/^\/[A-Za-z0-9._~/?=&%-]*$/.test(path)) throw new TypeError(`startHaproxy option "healthCheck.path" must be a plain path, got ${JSON.stringify(path)}`)
    const inter = positive(check.intervalMs, 200, 'healthCheck.intervalMs')
    const fall = positive(check.fall, 1, 'healthCheck.fall')
    const rise = positive(check.rise, 1, 'healthCheck.rise')
    checkLines.push('  option httpchk', `  http-check send meth GET uri ${path}`)
    serverSuffix = ` check inter ${inter} fastinter ${inter} downinter ${inter} fall ${fall} rise ${rise}`
  }

  const text = [
    '# Written by the test harness; loopback only.',
    'global',
    `  stats socket ${socket} mode 600 level admin`,
    '  stats timeout 10s',
    '  maxconn 1024',
    '',
    'defaults',
    '  mode http',
    '  option redispatch',
    '  retries 1',
    `  timeout connect ${Math.min(timeout, 1000)}ms`,
    `  timeout client ${timeout}ms`,
    `  timeout server ${timeout}ms`,
    `  timeout check ${Math.min(timeout, 1000)}ms`,
    '',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    '  default_backend be',
    '',
    'backend be',
    ...balanceLines,
    ...checkLines,
    ...backends.map(({ name, port: p }) => `  server ${name} 127.0.0.1:${p}${serverSuffix}`),
    '',
  ].join('\n')
  return { text, servers: backends.map((b) => b.name) }
}

/** One runtime API command over the unix socket (HAProxy answers and closes in non-interactive mode). */
function runtimeCommand(socket: string, line: string, timeoutMs = 3000): Promise<string> {
  if (/[\r\n]/.test(line)) return Promise.reject(new TypeError('a runtime API command is one line'))
  return new Promise((resolve, reject) => {
    const client = connect(socket)
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      client.destroy()
      reject(new Error(`runtime API command "${line}" got no answer within ${timeoutMs} ms`))
    }, timeoutMs)
    client.on('connect', () => client.write(`${line}\n`))
    client.on('data', (chunk: Buffer) => chunks.push(chunk))
    client.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    client.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString('utf8'))
    })
  })
}

function parseStat(csv: string): Record<string, HaproxyServerStatus> {
  const lines = csv.split('\n').filter((l) => l.trim() !== '')
  const header = (lines[0] ?? '').replace(/^# /, '').split(',')
  const col = (name: string): number => header.indexOf(name)
  const [px, sv, status, stot] = [col('pxname'), col('svname'), col('status'), col('stot')]
  const result: Record<string, HaproxyServerStatus> = {}
  for (const line of lines.slice(1)) {
    const cells = line.split(',')
    const name = cells[sv] ?? ''
    if (cells[px] !== 'be' || name === 'BACKEND' || name === 'FRONTEND') continue
    result[name] = { status: cells[status] ?? '', sessions: Number(cells[stot] ?? 0) }
  }
  return result
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/**
 * Start HAProxy in the foreground with a config written to a new temporary directory: one
 * frontend on a free port of 127.0.0.1, one backend with the given servers, and the runtime API
 * at `<dir>/admin.sock` (`level admin`). Resolves once the frontend accepts connections and the
 * runtime API answers. The process is killed if the test process exits first.
 *
 * @example
 * ```ts
 * const lb = await startHaproxy({ backends: [portA, portB, portC], balance: { stickyCookie: 'sid' } })
 * t.teardown(() => lb.stop())
 * await lb.setState('s1', 'maint')
 * ```
 */
export async function startHaproxy(options: HaproxyOptions): Promise<Haproxy> {
  const startTimeout = positive(options.startTimeoutMs, 5000, 'startTimeoutMs')
  const dir = await mkdtemp(join(tmpdir(), 'csm-haproxy-'))
  const socket = join(dir, 'admin.sock')
  const file = join(dir, 'haproxy.cfg')
  let lastError = ''
  try {
    // The free port can be taken between finding it and HAProxy binding it: try a few.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort()
      const { text, servers } = haproxyConfig(options, port, socket)
      await writeFile(file, text)
      const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] })
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
      let exited = false
      const exit = new Promise<void>((resolve) => {
        child.once('exit', () => {
          exited = true
          resolve()
        })
        child.once('error', (err) => {
          output += String(err)
          exited = true
          resolve()
        })
      })
      const killOnExit = (): void => {
        child.kill('SIGKILL')
      }
      process.once('exit', killOnExit)
      try {
        await waitUntil('HAProxy to start', startTimeout, async () => {
          if (exited) throw new Error('exited')
          return (await tcpOpen(port)) && (await runtimeCommand(socket, 'show info')).includes('Name: HAProxy')
        })
      } catch {
        lastError = exited ? output : `did not start within ${startTimeout} ms: ${output}`
        process.removeListener('exit', killOnExit)
        child.kill('SIGKILL')
        await exit
        continue
      }
      return running(child, exit, killOnExit, { port, dir, file, socket, text, servers })
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  await rm(dir, { recursive: true, force: true })
  throw new Error(`HAProxy did not start: ${lastError.trim()}`)
}

function running(
  child: ChildProcess,
  exit: Promise<void>,
  killOnExit: () => void,
  where: { port: number; dir: string; file: string; socket: string; text: string; servers: string[] },
): Haproxy {
  const { port, dir, socket, text, servers } = where
  let stopping: Promise<void> | undefined
  const command = (line: string): Promise<string> => runtimeCommand(socket, line)
  const status = async (): Promise<Record<string, HaproxyServerStatus>> => parseStat(await command('show stat'))
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    servers,
    dir,
    config: text,
    pid: child.pid ?? -1,
    command,
    async setState(server, state) {
      if (!servers.includes(server)) throw new TypeError(`no server ${JSON.stringify(server)}; servers are ${servers.join(', ')}`)
      if (state !== 'ready' && state !== 'drain' && state !== 'maint') throw new TypeError(`state must be ready, drain or maint, got ${String(state)}`)
      const answer = await command(`set server be/${server} state ${state}`)
      if (answer.trim() !== '') throw new Error(`HAProxy refused "set server be/${server} state ${state}": ${answer.trim()}`)
    },
    status,
    async waitForStatus(server, wanted, timeoutMs = 3000) {
      await waitUntil(`server ${server} to be ${wanted}`, timeoutMs, async () => (await status())[server]?.status.startsWith(wanted) ?? false)
    },
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM')
          const timer = setTimeout(() => child.kill('SIGKILL'), 2000)
          await exit
          clearTimeout(timer)
        }
        process.removeListener('exit', killOnExit)
        await rm(dir, { recursive: true, force: true })
      })()
      return stopping
    },
  }
}
