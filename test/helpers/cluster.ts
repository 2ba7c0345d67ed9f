import type { ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import { Agent } from 'node:http'
import { fileURLToPath } from 'node:url'
import type { Storage, StorageAdmin } from '../../src/types.js'
import { forkServer, type ChildServer } from './child-server.js'
import { startHaproxy, type Haproxy, type HaproxyBalance, type HaproxyHealthCheck } from './haproxy.js'
import { MYSQL_URL, REDIS_URL } from './services.js'
import { CookieJar, httpGet } from './session-client.js'

const FIXTURE = fileURLToPath(new URL('../process/fixtures/cluster-server.ts', import.meta.url))

/** The shared storages a cluster can run on. */
export type ClusterStorage = 'mysql' | 'dynamodb'

/** The cookie the fixture's CookieIdentity issues (its default name). */
export const SESSION_COOKIE = 'sid'

/**
 * Sticky balancing on the session: a hash of the session cookie's id part (the value is
 * `<id>` or `<id>.<version>`), so a session stays on one server while its version changes.
 */
export const STICKY: HaproxyBalance = { stickyCookie: SESSION_COOKIE, upTo: '.' }

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  readonly storage: ClusterStorage
  /** Server names, in HAProxy's config order; default `['a', 'b', 'c']`. */
  readonly nodes?: readonly string[]
  /** Give every server `bus: new RedisBus({ url: REDIS_URL })`, all on one channel of their own. Default false. */
  readonly bus?: boolean
  /** The servers' `trustCacheFor` option; default none (the manager's default). */
  readonly trustCacheFor?: number
  /** The servers' `principal` option (a data key); default none. */
  readonly principal?: string
  /** HAProxy's balancing. */
  readonly balance: HaproxyBalance
  /** HAProxy's health checks of `/health`; default none. */
  readonly healthCheck?: HaproxyHealthCheck
}

/** What a cluster server answers (see test/process/fixtures/cluster-server.ts). */
export interface ClusterAnswer {
  /** The server that answered. */
  readonly node: string
  readonly pid: number
  readonly id?: string | null
  readonly isNew?: boolean
  readonly data?: Record<string, unknown>
  /** What `/incr` returned from `session.update`. */
  readonly value?: number
  readonly oldId?: string
  readonly error?: string
  readonly message?: string
  readonly stats?: Record<string, number>
  /** What `/sessions-of` listed. */
  readonly ids?: readonly string[]
  /** What `/revoke-of` ended. */
  readonly ended?: number
}

/** One answer through the balancer. */
export interface ClusterReply {
  readonly status: number
  readonly body: ClusterAnswer
}

/** One server of a cluster. */
export interface ClusterNode {
  /** Its name: HAProxy's server name and the `node` of its answers. */
  readonly name: string
  readonly port: number
  readonly pid: number
  readonly server: ChildServer
  /** SIGKILL, and wait until it is gone. */
  kill(): Promise<void>
}

/** Three (or so) fixture servers on one shared table, behind HAProxy; see {@link startCluster}. */
export interface Cluster {
  readonly nodes: readonly ClusterNode[]
  readonly lb: Haproxy
  /** The shared table's name. */
  readonly table: string
  /** A storage of the test process's own on the shared table, to check what it holds. */
  readonly storage: Storage & StorageAdmin
  /** The node called `name`. */
  node(name: string): ClusterNode
  /** A new client of the balancer, with an empty cookie jar. */
  client(): ClusterClient
  /** `manager.stats()` of one server, asked directly (not through the balancer). */
  stats(name: string): Promise<Record<string, number>>
  /** Stop everything: HAProxy, the servers (SIGTERM, SIGKILL after 3 s), dynalite, the table. Idempotent. */
  stop(): Promise<void>
}

const REQUEST_TIMEOUT_MS = 5000
const agent = new Agent({ keepAlive: false })

/** A client of the balancer: a browser's cookie jar, one new connection per request. */
export class ClusterClient {
  readonly jar = new CookieJar()
  readonly #port: number

  constructor(port: number) {
    this.#port = port
  }

  /** The Cookie header this client sends now (`''` before it has a session). */
  get cookie(): string {
    return this.jar.header()
  }

  /** GET `path` with this client's cookies; the jar keeps what the answer sets. Rejects only on a network error. */
  async get(path: string): Promise<ClusterReply> {
    const cookie = this.jar.header()
    const response = await httpGet(agent, this.#port, path, cookie === '' ? {} : { cookie }, REQUEST_TIMEOUT_MS)
    this.jar.absorb(response.setCookie)
    return { status: response.status, body: parse(response.body, response.status) }
  }

  /** GET `path` with exactly the Cookie header `cookie` (an old one, replayed); the answer's cookies are not kept. */
  async replay(cookie: string, path = '/read'): Promise<ClusterReply> {
    const response = await httpGet(agent, this.#port, path, { cookie }, REQUEST_TIMEOUT_MS)
    return { status: response.status, body: parse(response.body, response.status) }
  }

  /** {@link get}, expecting a 200: anything else throws with what came back. */
  async ok(path: string): Promise<ClusterAnswer> {
    const reply = await this.get(path)
    if (reply.status !== 200) throw new Error(`GET ${path} answered ${reply.status}: ${JSON.stringify(reply.body)}`)
    return reply.body
  }
}

function parse(body: string, status: number): ClusterAnswer {
  try {
    return JSON.parse(body) as ClusterAnswer
  } catch {
    // HAProxy's own error pages (502, 503) are HTML.
    return { node: '(haproxy)', pid: 0, error: `HTTP ${status}: ${body.slice(0, 80).replace(/\s+/g, ' ')}` }
  }
}

/** What one step of startup made, undone by {@link Cluster.stop} in reverse order. */
type Undo = () => Promise<void>

async function openStorage(kind: ClusterStorage, table: string, undo: Undo[]): Promise<{ storage: Storage & StorageAdmin; env: Record<string, string> }> {
  if (kind === 'mysql') {
    const { MySQLStorage } = await import('../../storages/mysql.js')
    const storage = new MySQLStorage({ uri: MYSQL_URL, table })
    undo.push(async () => {
      await storage.close()
      const { dropTable, closeAdmin } = await import('./mysql.js')
      await dropTable(table)
      await closeAdmin()
    })
    // Made here, once, before the servers start (each would otherwise race to create it).
    await storage.length()
    return { storage, env: { MYSQL_URL } }
  }
  const { startDynalite, createSessionTable } = await import('./dynalite.js')
  const dynalite = await startDynalite()
  undo.push(() => dynalite.close())
  await createSessionTable(dynalite.admin, table)
  const { DynamoDBStorage } = await import('../../storages/dynamodb.js')
  const storage = new DynamoDBStorage({ table, clientConfig: dynalite.clientConfig })
  undo.push(() => storage.close())
  return { storage, env: { DYNAMO_ENDPOINT: String(dynalite.clientConfig.endpoint) } }
}

async function stopServer(server: ChildServer): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  server.child.kill('SIGTERM')
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 3000)
  await server.exited
  clearTimeout(timer)
}

/**
 * Start a cluster for one test: the shared table (MySQL: a new table; DynamoDB: an in-process
 * dynalite on a loopback port with a new table), `nodes` fixture servers on it (each its own
 * process with its own SessionManager on default options), and HAProxy in front. Everything is
 * stopped by the test's teardown, whether it passed, failed or threw, and also when startup
 * itself fails halfway.
 *
 * @example
 * ```ts
 * const cluster = await startCluster(t, { storage: 'mysql', balance: 'roundrobin' })
 * const client = cluster.client()
 * await client.ok('/set?key=x&value=1')
 * ```
 */
export async function startCluster(t: ExecutionContext, options: ClusterOptions): Promise<Cluster> {
  const undo: Undo[] = []
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const errors: unknown[] = []
      for (const step of undo.reverse()) await step().catch((err: unknown) => errors.push(err))
      if (errors.length > 0) throw new AggregateError(errors, 'the cluster did not stop cleanly')
    })()
    return stopping
  }
  t.teardown(stop)
  try {
    const table = `coherence_${randomBytes(6).toString('hex')}`
    const { storage, env: storageEnv } = await openStorage(options.storage, table, undo)
    const env: Record<string, string> = {
      ...storageEnv,
      STORAGE: options.storage,
      TABLE: table,
      PORT: '0',
      // Set to '' (unset) unless asked for: nothing leaks in from this process's environment.
      REDIS_URL: options.bus === true ? REDIS_URL : '',
      BUS_CHANNEL: `csm-coherence-test:${table}`,
      TRUST_CACHE_FOR: options.trustCacheFor === undefined ? '' : String(options.trustCacheFor),
      PRINCIPAL: options.principal ?? '',
    }
    const names = options.nodes ?? ['a', 'b', 'c']
    const started = await Promise.allSettled(names.map((name) => forkServer(FIXTURE, { ...env, NODE: name })))
    for (const result of started) if (result.status === 'fulfilled') undo.push(() => stopServer(result.value))
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    const nodes = started.map((result, i): ClusterNode => {
      const server = (result as PromiseFulfilledResult<ChildServer>).value
      return { name: names[i]!, port: server.port, pid: server.child.pid ?? -1, server, kill: () => server.kill() }
    })
    const lb = await startHaproxy({
      backends: nodes.map(({ name, port }) => ({ name, port })),
      balance: options.balance,
      ...(options.healthCheck === undefined ? {} : { healthCheck: options.healthCheck }),
    })
    undo.push(() => lb.stop())
    if (options.healthCheck !== undefined) await Promise.all(names.map((name) => lb.waitForStatus(name, 'UP', 10_000)))
    return {
      nodes,
      lb,
      table,
      storage,
      node(name) {
        const node = nodes.find((n) => n.name === name)
        if (node === undefined) throw new Error(`no node ${name}; nodes are ${names.join(', ')}`)
        return node
      },
      client: () => new ClusterClient(lb.port),
      async stats(name) {
        const node = nodes.find((n) => n.name === name)
        if (node === undefined) throw new Error(`no node ${name}`)
        const response = await httpGet(agent, node.port, '/stats', {}, REQUEST_TIMEOUT_MS)
        return parse(response.body, response.status).stats ?? {}
      },
      stop,
    }
  } catch (err) {
    await stop().catch(() => undefined)
    throw err
  }
}

/** Milliseconds since `start` (a `performance.now()` reading), rounded. */
export function since(start: number): number {
  return Math.round(performance.now() - start)
}

/** Wait `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
