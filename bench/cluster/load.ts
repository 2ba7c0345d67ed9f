/**
 * The cluster bench's load generator: many clients, each with its own session and cookie jar,
 * sending one request at a time over keep-alive connections to one or several servers. A
 * client keeps the cookies each response sets (as a browser does), so the versioned cookie
 * re-issued after a write reaches whichever server it talks to next.
 *
 * HTTP/1.1 is written and parsed by hand on raw sockets: on two cores the load generator shares
 * the CPU with the servers and the database, and node:http's client costs several times more
 * per request. It expects what node:http servers send here: a Content-Length body, no chunking.
 */
import { connect, type Socket } from 'node:net'

/** One client: a session, its cookies, and what it last wrote. */
export interface LoadClient {
  /** Index of the server it talks to when sticky (and starts from when not). */
  readonly home: number
  /** Shifts which of its requests are writes, so clients do not all write at once. */
  readonly offset: number
  readonly jar: Map<string, string>
  /** The Cookie header of the jar. */
  cookie: string
  /** The value of its last acknowledged write. */
  acked: number
  /** Requests sent so far. */
  sent: number
}

/** How requests are spread over the servers. */
export type Spread = 'round-robin' | 'sticky'

/** Options of {@link runLoad}. */
export interface LoadOptions {
  readonly ports: readonly number[]
  readonly spread: Spread
  /** One request in this many is a write (1: every request). */
  readonly writeEvery: number
  /** Requests in flight at once (each on its own connection per server). */
  readonly connections: number
  readonly seconds: number
}

/** What a load run measured. */
export interface LoadResult {
  requests: number
  reads: number
  writes: number
  /** Requests that failed (a status other than 200, a lost connection). */
  errors: number
  /** Reads that answered a value older than the client's last acknowledged write. */
  staleReads: number
  /** Responses that set a cookie. */
  cookiesSet: number
  /** Seconds from the first request to the last response. */
  seconds: number
  /** Latency percentiles, milliseconds. */
  p50: number
  p99: number
}

interface Response {
  status: number
  body: string
  setCookie: string[]
}

const HEAD_END = '\r\n\r\n'
const CONTENT_LENGTH = /\r\ncontent-length: *(\d+)/i
const SET_COOKIE = /\r\nset-cookie: *([^\r]*)/gi

/** One keep-alive connection, one request at a time. */
class Connection {
  readonly #socket: Socket
  #buffer = ''
  #waiting: { resolve: (response: Response) => void; reject: (error: Error) => void } | undefined
  #failed: Error | undefined

  private constructor(socket: Socket) {
    this.#socket = socket
    socket.setNoDelay(true)
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => this.#receive(chunk))
    const lost = (error?: Error): void => this.#fail(error ?? new Error('the server closed the connection'))
    socket.on('error', lost)
    socket.on('close', () => lost())
  }

  static open(port: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port })
      socket.once('connect', () => {
        socket.off('error', reject)
        resolve(new Connection(socket))
      })
      socket.once('error', reject)
    })
  }

  get usable(): boolean {
    return this.#failed === undefined
  }

  request(text: string): Promise<Response> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed)
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject }
      this.#socket.write(text, 'latin1')
    })
  }

  close(): void {
    this.#socket.destroy()
  }

  #receive(chunk: string): void {
    this.#buffer += chunk
    const headEnd = this.#buffer.indexOf(HEAD_END)
    if (headEnd === -1) return
    const head = this.#buffer.slice(0, headEnd)
    const length = CONTENT_LENGTH.exec(head)
    if (length === null) return this.#fail(new Error(`a response without Content-Length: ${head.split('\r\n', 1)[0]}`))
    const bodyStart = headEnd + HEAD_END.length
    const bodyEnd = bodyStart + Number(length[1])
    if (this.#buffer.length < bodyEnd) return
    const setCookie: string[] = []
    for (const match of head.matchAll(SET_COOKIE)) setCookie.push(match[1]!)
    const response: Response = { status: Number(head.slice(9, 12)), body: this.#buffer.slice(bodyStart, bodyEnd), setCookie }
    this.#buffer = this.#buffer.slice(bodyEnd)
    const waiting = this.#waiting
    this.#waiting = undefined
    waiting?.resolve(response)
  }

  #fail(error: Error): void {
    this.#failed ??= error
    const waiting = this.#waiting
    this.#waiting = undefined
    waiting?.reject(error)
    this.#socket.destroy()
  }
}

/** A worker's connections, one per server, opened when first needed and again after a failure. */
class Connections {
  readonly #open = new Map<number, Connection>()

  async to(port: number): Promise<Connection> {
    const known = this.#open.get(port)
    if (known?.usable === true) return known
    const connection = await Connection.open(port)
    this.#open.set(port, connection)
    return connection
  }

  close(): void {
    for (const connection of this.#open.values()) connection.close()
    this.#open.clear()
  }
}

function requestText(path: string, cookie: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${cookie === '' ? '' : `Cookie: ${cookie}\r\n`}\r\n`
}

/** Keep what `setCookie` sets in the client's jar, as a browser would (an empty value clears). */
function keepCookies(client: LoadClient, setCookie: readonly string[]): void {
  if (setCookie.length === 0) return
  for (const line of setCookie) {
    const pair = line.split(';', 1)[0]!
    const eq = pair.indexOf('=')
    if (eq <= 0) continue
    const name = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).trim()
    if (value === '') client.jar.delete(name)
    else client.jar.set(name, value)
  }
  client.cookie = [...client.jar].map(([name, value]) => `${name}=${value}`).join('; ')
}

/**
 * Start `count` clients, each with a session of its own: a first write with no cookie to its
 * home server (clients are spread over the servers in turn). Rejects if a server issues no cookie.
 */
export async function startClients(ports: readonly number[], count: number, writeEvery: number, parallel = 16): Promise<LoadClient[]> {
  const clients: LoadClient[] = []
  for (let i = 0; i < count; i++) clients.push({ home: i % ports.length, offset: (i * 7) % writeEvery, jar: new Map(), cookie: '', acked: 0, sent: 0 })
  let next = 0
  const worker = async (): Promise<void> => {
    const connections = new Connections()
    try {
      while (next < clients.length) {
        const client = clients[next++]!
        const connection = await connections.to(ports[client.home]!)
        const response = await connection.request(requestText('/write?n=1', ''))
        keepCookies(client, response.setCookie)
        if (response.status !== 200 || client.cookie === '') throw new Error(`the first write answered ${response.status} with no cookie: ${response.body}`)
        client.acked = 1
      }
    } finally {
      connections.close()
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker))
  return clients
}

/**
 * Have every server that will see a client read its session once (into that server's cache),
 * so the measured requests are session hits everywhere: each client reads from every server
 * but its home one. A read must see the client's first write.
 */
export async function primeClients(clients: readonly LoadClient[], ports: readonly number[], parallel = 16): Promise<void> {
  const visits = clients.flatMap((client) => ports.map((_, server) => ({ client, server })).filter((visit) => visit.server !== client.home))
  let next = 0
  const worker = async (): Promise<void> => {
    const connections = new Connections()
    try {
      while (next < visits.length) {
        const { client, server } = visits[next++]!
        const connection = await connections.to(ports[server]!)
        const response = await connection.request(requestText('/read', client.cookie))
        keepCookies(client, response.setCookie)
        if (response.status !== 200 || Number(response.body) < client.acked) throw new Error(`a first read answered ${response.status} "${response.body}"`)
      }
    } finally {
      connections.close()
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, visits.length) }, worker))
}

/** A FIFO of the clients not in flight, so that no client ever has two requests out. */
class IdleClients {
  readonly #ring: (LoadClient | undefined)[]
  #head = 0
  #size: number

  constructor(clients: readonly LoadClient[]) {
    this.#ring = [...clients]
    this.#size = clients.length
  }

  take(): LoadClient | undefined {
    if (this.#size === 0) return undefined
    const client = this.#ring[this.#head]
    this.#ring[this.#head] = undefined
    this.#head = (this.#head + 1) % this.#ring.length
    this.#size--
    return client
  }

  put(client: LoadClient): void {
    this.#ring[(this.#head + this.#size) % this.#ring.length] = client
    this.#size++
  }
}

/** The `q` quantile of sorted `values`, nearest rank. */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}

/**
 * Send requests from `clients` for `options.seconds`: each worker takes the client idle the
 * longest, sends its next request (a write every `writeEvery`-th, to its home server when
 * sticky, to the next server in turn otherwise), keeps the cookies of the answer, and puts the
 * client back. Stops sending at the deadline and waits for the answers in flight (bounded:
 * connections still busy 10 s later are closed and their requests counted as errors).
 */
export async function runLoad(clients: readonly LoadClient[], options: LoadOptions): Promise<LoadResult> {
  if (clients.length < options.connections) throw new Error(`${clients.length} clients cannot keep ${options.connections} requests in flight`)
  const idle = new IdleClients(clients)
  const servers = options.ports.length
  let latencies = new Float64Array(1 << 16)
  const result: LoadResult = { requests: 0, reads: 0, writes: 0, errors: 0, staleReads: 0, cookiesSet: 0, seconds: 0, p50: 0, p99: 0 }
  const started = performance.now()
  const deadline = started + options.seconds * 1000
  const all: Connections[] = []
  const watchdog = setTimeout(() => all.forEach((connections) => connections.close()), options.seconds * 1000 + 10_000)

  const worker = async (): Promise<void> => {
    const connections = new Connections()
    all.push(connections)
    while (performance.now() < deadline) {
      const client = idle.take()!
      const k = client.sent++
      const write = (k + client.offset) % options.writeEvery === 0
      const server = options.spread === 'sticky' ? client.home : (client.home + k) % servers
      const value = client.acked + 1
      const sentAt = performance.now()
      try {
        const connection = await connections.to(options.ports[server]!)
        const response = await connection.request(requestText(write ? `/write?n=${value}` : '/read', client.cookie))
        const latency = performance.now() - sentAt
        if (result.requests === latencies.length) {
          const grown = new Float64Array(latencies.length * 2)
          grown.set(latencies)
          latencies = grown
        }
        latencies[result.requests++] = latency
        if (response.setCookie.length > 0) {
          result.cookiesSet++
          keepCookies(client, response.setCookie)
        }
        if (response.status !== 200) result.errors++
        else if (write) {
          result.writes++
          client.acked = value
        } else {
          result.reads++
          if (Number(response.body) < client.acked) result.staleReads++
        }
      } catch {
        result.errors++
      }
      idle.put(client)
    }
  }

  try {
    await Promise.all(Array.from({ length: options.connections }, worker))
  } finally {
    clearTimeout(watchdog)
    all.forEach((connections) => connections.close())
  }
  result.seconds = (performance.now() - started) / 1000
  const sorted = latencies.slice(0, result.requests).sort()
  result.p50 = quantile(sorted, 0.5)
  result.p99 = quantile(sorted, 0.99)
  return result
}
