import { once } from 'node:events'
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'

/** Where a {@link TcpProxy} forwards to. */
export interface ProxyTarget {
  readonly host: string
  readonly port: number
}

interface Pair {
  readonly client: Socket
  readonly upstream: Socket
}

/**
 * A TCP proxy on 127.0.0.1 in front of a server (MariaDB in the tests) that can cut, refuse and
 * pause connections on command, to make a storage's network fail the way real networks do.
 *
 * - {@link TcpProxy.cut}: reset every open connection (a server restart, a dropped link);
 * - {@link TcpProxy.refuse}: reset new connections as they arrive (the server is down);
 * - {@link TcpProxy.pause}: stop relaying bytes both ways and hold new connections (a stalled
 *   network: nothing fails, nothing answers) until {@link TcpProxy.resume}.
 *
 * @example
 * ```ts
 * const proxy = await TcpProxy.start({ host: '127.0.0.1', port: 3306 })
 * const storage = new MySQLStorage({ uri: `mysql://root@127.0.0.1:${proxy.port}/test` })
 * proxy.cut()
 * await proxy.close()
 * ```
 */
export class TcpProxy {
  readonly #server: Server
  readonly #target: ProxyTarget
  readonly #pairs = new Set<Pair>()
  #refusing = false
  #paused = false
  /** Connections accepted so far. */
  accepted = 0

  private constructor(server: Server, target: ProxyTarget) {
    this.#server = server
    this.#target = target
    server.on('connection', (client) => this.#accept(client))
  }

  /** Start a proxy on a free port of 127.0.0.1. */
  static async start(target: ProxyTarget): Promise<TcpProxy> {
    const proxy = new TcpProxy(createServer({ pauseOnConnect: true }), target)
    proxy.#server.listen(0, '127.0.0.1')
    await once(proxy.#server, 'listening')
    return proxy
  }

  /** The port clients connect to. */
  get port(): number {
    return (this.#server.address() as AddressInfo).port
  }

  /** Connections open now. */
  get connections(): number {
    return this.#pairs.size
  }

  /** Reset every open connection; new ones are still accepted. */
  cut(): void {
    for (const pair of this.#pairs) this.#drop(pair)
  }

  /** Reset new connections (and, with `cutOpen`, the open ones) until called with `false`. */
  refuse(on = true, cutOpen = true): void {
    this.#refusing = on
    if (on && cutOpen) this.cut()
  }

  /** Stop relaying in both directions; new connections wait too. */
  pause(): void {
    this.#paused = true
    for (const { client, upstream } of this.#pairs) {
      client.pause()
      upstream.pause()
    }
  }

  /** Relay again what was held. */
  resume(): void {
    this.#paused = false
    for (const { client, upstream } of this.#pairs) {
      client.resume()
      upstream.resume()
    }
  }

  /** Reset every connection and stop listening. */
  async close(): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #accept(client: Socket): void {
    this.accepted++
    if (this.#refusing) {
      client.resetAndDestroy()
      return
    }
    const upstream = connect({ host: this.#target.host, port: this.#target.port })
    const pair: Pair = { client, upstream }
    this.#pairs.add(pair)
    client.on('error', () => this.#drop(pair))
    upstream.on('error', () => this.#drop(pair))
    client.on('close', () => this.#drop(pair))
    upstream.on('close', () => this.#drop(pair))
    // pipe() resumes both sides; a paused proxy pauses them again right after.
    client.pipe(upstream)
    upstream.pipe(client)
    if (this.#paused) {
      client.pause()
      upstream.pause()
    }
  }

  #drop(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return
    if (!pair.client.destroyed) pair.client.resetAndDestroy()
    if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy()
  }
}
