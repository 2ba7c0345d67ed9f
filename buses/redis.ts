import { createClient } from 'redis'
import {
  BusCore,
  checkBusOptions,
  decodeInvalidationMessage,
  encodeInvalidationMessage,
  positiveIntegerOption,
  type BusOptions,
  type Invalidation,
  type InvalidationBus,
  type InvalidationBusStats,
  type InvalidationListener,
} from '../src/bus.js'
import { optionNames } from '../src/kit/options.js'

/**
 * A node-redis v5 client (what `createClient()` returns), given as a template. The bus never
 * uses or closes it: it calls `duplicate()` for its own two connections, keeping the client's
 * options except the reconnect strategy and offline queue, which the bus sets itself.
 */
export interface RedisBusClient {
  /** Make a new client with the same options (and the overrides given). */
  duplicate(overrides?: Record<string, unknown>): unknown
  /** The client's options. */
  readonly options?: { readonly socket?: object } | undefined
}

/** Options of {@link RedisBus}. */
export interface RedisBusOptions extends BusOptions {
  /** The server, `redis[s]://[[user][:password]@]host[:port][/db]`. Default `redis://127.0.0.1:6379`. Not with `client`. */
  url?: string
  /** A client to copy the connection settings of, instead of `url`; see {@link RedisBusClient}. */
  client?: RedisBusClient
  /**
   * The pub/sub channel. Every process sharing a storage must use the same one; different
   * applications on one Redis need different ones. Default `caching-session-manager:invalidations`.
   */
  channel?: string
  /** Most messages waiting to be sent while Redis is unreachable; beyond that the oldest are dropped (and counted). Default 1000. */
  maxQueue?: number
  /** Longest wait between reconnection attempts, milliseconds; attempts back off from 50 ms up to this. Default 2000. */
  maxReconnectDelay?: number
  /** Longest wait for one connection attempt, milliseconds. Default 2000. */
  connectTimeout?: number
  /** How long {@link RedisBus.close} waits for queued messages to be sent, milliseconds. Default 500. */
  closeTimeout?: number
}

/** The part of a node-redis client the bus uses. */
interface Connection {
  connect(): Promise<unknown>
  publish(channel: string, message: string): Promise<number>
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void>
  destroy(): void
  on(event: 'ready' | 'error' | 'reconnecting' | 'end', listener: (arg: unknown) => void): unknown
  readonly isReady: boolean
  readonly isOpen: boolean
}

interface Queued {
  readonly text: string
  /** Order of publishing, for {@link RedisBus.flush}. */
  readonly seq: number
  attempts: number
}

interface FlushWaiter {
  /** Waits for every message published up to this one. */
  readonly upTo: number
  readonly resolve: () => void
}

const KNOWN = optionNames<RedisBusOptions>({
  url: true,
  client: true,
  channel: true,
  maxQueue: true,
  maxReconnectDelay: true,
  connectTimeout: true,
  closeTimeout: true,
  origin: true,
  now: true,
  onError: true,
})

/** Sends in flight at once on the publisher connection; the rest wait in the bounded queue. */
const MAX_IN_FLIGHT = 64

/** A message whose send failed this many times (each time its connection was lost) is dropped. */
const MAX_ATTEMPTS = 3

function clientName(origin: string, role: 'pub' | 'sub'): string {
  // CLIENT SETNAME allows no spaces; the name lets operators (and tests) find the bus's connections.
  return `csm-bus:${origin.replace(/[^A-Za-z0-9._:-]/g, '_')}:${role}`
}

/**
 * An {@link InvalidationBus} on Redis pub/sub, with the `redis` package (v5, an optional peer
 * dependency). It opens two connections of its own: one publishes, one subscribes to the channel.
 *
 * Under failure:
 * - Redis unreachable or a connection lost: each connection reconnects by itself, backing off
 *   from 50 ms to `maxReconnectDelay`, until {@link close}; `stats().reconnects` counts each
 *   connection that came back, `stats().errors` each error the client reported.
 * - Publishing while the publisher is down: the message waits in a queue of `maxQueue`
 *   (oldest dropped beyond that, counted in `dropped`) and is sent on reconnection; a send
 *   lost with its connection is tried again (at most 3 times). `publish` never throws, rejects
 *   or waits for Redis.
 * - The subscriber down: pub/sub keeps nothing, so messages published meanwhile are lost. When
 *   the subscription is back, listeners get {@link InvalidationListener.onGap}.
 * - Malformed messages on the channel (not this format, too long): counted in `malformed`, dropped.
 * - {@link close} while a connection is being made waits for that attempt to finish or fail, so
 *   that no connection outlives the bus: it resolves within `closeTimeout + connectTimeout +
 *   maxReconnectDelay` at worst (a few milliseconds when Redis is up).
 *
 * Session ids travel on the channel in clear: protect Redis like the session storage.
 *
 * @example
 * ```ts
 * import { RedisBus } from 'caching-session-manager/buses/redis'
 *
 * const bus = new RedisBus({ url: process.env.REDIS_URL, channel: 'myapp:sessions' })
 * await Promise.race([bus.ready(), setTimeout(2000)]) // optional: the bus works once it connects
 * ```
 */
export class RedisBus implements InvalidationBus {
  readonly #core: BusCore
  readonly #channel: string
  readonly #maxQueue: number
  readonly #closeTimeout: number
  readonly #connectTimeout: number
  readonly #maxReconnectDelay: number
  readonly #pub: Connection
  readonly #sub: Connection
  readonly #queue: Queued[] = []
  /** Messages published and neither sent nor dropped yet, by sequence number. */
  readonly #unsettled = new Set<number>()
  #seq = 0
  #flushWaiters: FlushWaiter[] = []
  #inFlight = 0
  #drained: (() => void) | undefined
  #closing = false
  #closed: Promise<void> | undefined
  // Each connection: has it been ready once, is it up now.
  #pubEverReady = false
  #subEverReady = false
  #subscribed = false
  #subscribing = false
  #subUp = false
  #subWasUp = false
  #readyResolved = false
  /** Since when the subscription is missing (epoch ms), when it is. */
  #subDownSince: number | undefined
  /** Whether the subscription failed before it first worked (messages may have been missed then). */
  #subFailedEarly = false
  readonly #ready: Promise<void>
  #resolveReady!: () => void
  #rejectReady!: (err: Error) => void
  readonly #onRaw = (text: string): void => {
    if (this.#closing) return
    this.#core.deliver(decodeInvalidationMessage(text))
  }

  /** @throws TypeError naming the option that is wrong. */
  constructor(options: RedisBusOptions = {}) {
    const checked = checkBusOptions('RedisBus', options, KNOWN)
    const { url, client, channel = 'caching-session-manager:invalidations' } = checked
    if (url !== undefined && client !== undefined) throw new TypeError('RedisBus takes option "url" or option "client", not both')
    if (url !== undefined) {
      let protocol: string | undefined
      try {
        protocol = typeof url === 'string' ? new URL(url).protocol : undefined
      } catch {
        protocol = undefined
      }
      if (protocol !== 'redis:' && protocol !== 'rediss:') throw new TypeError(`RedisBus option "url" must be a redis:// or rediss:// URL, got ${String(url)}`)
    }
    if (client !== undefined && (typeof client !== 'object' || client === null || typeof (client as RedisBusClient).duplicate !== 'function')) {
      throw new TypeError('RedisBus option "client" must be a node-redis client (from createClient)')
    }
    if (typeof channel !== 'string' || channel.length === 0 || channel.length > 256) {
      throw new TypeError('RedisBus option "channel" must be a string of 1 to 256 characters')
    }
    this.#channel = channel
    this.#maxQueue = positiveIntegerOption('RedisBus', 'maxQueue', checked['maxQueue'], 1000)
    const maxReconnectDelay = positiveIntegerOption('RedisBus', 'maxReconnectDelay', checked['maxReconnectDelay'], 2000)
    const connectTimeout = positiveIntegerOption('RedisBus', 'connectTimeout', checked['connectTimeout'], 2000)
    const closeTimeout = checked['closeTimeout'] ?? 500
    if (typeof closeTimeout !== 'number' || !Number.isSafeInteger(closeTimeout) || closeTimeout < 0) {
      throw new TypeError(`RedisBus option "closeTimeout" must be a non-negative integer of milliseconds, got ${String(closeTimeout)}`)
    }
    this.#closeTimeout = closeTimeout
    this.#connectTimeout = connectTimeout
    this.#maxReconnectDelay = maxReconnectDelay
    this.#core = new BusCore(checked.origin, checked.now, checked.onError)
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve
      this.#rejectReady = reject
    })
    // Nobody may be waiting when close() rejects it; callers of ready() still see the rejection.
    this.#ready.catch(() => {})

    // Jittered exponential backoff, bounded; no reconnection once closing.
    const reconnectStrategy = (retries: number): number | false => {
      if (this.#closing) return false
      const base = Math.min(50 * 2 ** Math.min(retries, 16), maxReconnectDelay)
      return Math.round(base / 2 + (Math.random() * base) / 2)
    }
    const make = (role: 'pub' | 'sub'): Connection => {
      const common = { name: clientName(this.#core.origin, role), disableOfflineQueue: role === 'pub', commandsQueueMaxLength: MAX_IN_FLIGHT * 2 }
      if (client !== undefined) {
        const template = client as RedisBusClient
        const socket = { ...(template.options?.socket ?? {}), reconnectStrategy, connectTimeout }
        return template.duplicate({ ...common, socket }) as Connection
      }
      return createClient({
        ...common,
        url: typeof url === 'string' ? url : 'redis://127.0.0.1:6379',
        socket: { reconnectStrategy, connectTimeout },
      })
    }
    this.#pub = make('pub')
    this.#sub = make('sub')
    this.#subDownSince = this.#core.now()

    this.#pub.on('error', (err) => this.#core.error(err))
    this.#pub.on('ready', () => {
      if (this.#closing) return
      if (this.#pubEverReady) this.#core.counts.reconnects++
      this.#pubEverReady = true
      this.#checkReady()
      this.#pump()
    })
    this.#sub.on('error', (err) => {
      this.#core.error(err)
      this.#subLost()
    })
    this.#sub.on('reconnecting', () => this.#subLost())
    this.#sub.on('end', () => this.#subLost())
    this.#sub.on('ready', () => {
      if (this.#closing) return
      if (this.#subEverReady) this.#core.counts.reconnects++
      this.#subEverReady = true
      // node-redis subscribes again by itself before it says ready; only the first time is ours.
      if (this.#subscribed) this.#subBack()
      else void this.#subscribeFirst()
    })
    this.#pub.connect().catch((err: unknown) => this.#closing || this.#core.error(err))
    this.#sub.connect().catch((err: unknown) => this.#closing || this.#core.error(err))
  }

  /** {@inheritDoc InvalidationBus.origin} */
  get origin(): string {
    return this.#core.origin
  }

  /** The pub/sub channel the bus uses. */
  get channel(): string {
    return this.#channel
  }

  /** {@inheritDoc InvalidationBus.publish} */
  publish(invalidation: Invalidation): boolean {
    const message = this.#core.stamp(invalidation)
    if (this.#closing) {
      this.#core.counts.dropped++
      return false
    }
    const seq = ++this.#seq
    this.#unsettled.add(seq)
    this.#queue.push({ text: encodeInvalidationMessage(message), seq, attempts: 0 })
    if (this.#queue.length > this.#maxQueue) {
      this.#done(this.#queue.shift()!)
      this.#core.counts.dropped++
    }
    this.#pump()
    return true
  }

  /** {@inheritDoc InvalidationBus.flush} */
  flush(timeoutMs: number): Promise<void> {
    const upTo = this.#seq
    if (!this.#waitsFor(upTo)) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const waiter: FlushWaiter = {
        upTo,
        resolve: () => {
          clearTimeout(timer)
          this.#flushWaiters = this.#flushWaiters.filter((other) => other !== waiter)
          resolve()
        },
      }
      const timer = setTimeout(waiter.resolve, timeoutMs)
      this.#flushWaiters.push(waiter)
    })
  }

  /** Whether a message published up to `upTo` is still unsettled. */
  #waitsFor(upTo: number): boolean {
    for (const seq of this.#unsettled) if (seq <= upTo) return true
    return false
  }

  /** `item` was sent or dropped: release the flushes that waited for it alone. */
  #done(item: Queued): void {
    this.#unsettled.delete(item.seq)
    if (this.#flushWaiters.length === 0) return
    for (const waiter of [...this.#flushWaiters]) if (!this.#waitsFor(waiter.upTo)) waiter.resolve()
  }

  /** {@inheritDoc InvalidationBus.subscribe} */
  subscribe(listener: InvalidationListener): () => void {
    return this.#core.add(listener)
  }

  /** {@inheritDoc InvalidationBus.ready} */
  ready(): Promise<void> {
    return this.#ready
  }

  /** {@inheritDoc InvalidationBus.stats} */
  stats(): InvalidationBusStats {
    const connected = !this.#closing && this.#pub.isReady && this.#subUp && this.#sub.isReady
    return this.#core.snapshot(connected, this.#queue.length + this.#inFlight)
  }

  /** {@inheritDoc InvalidationBus.close} */
  close(): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  async #close(): Promise<void> {
    this.#closing = true
    if (this.#queue.length + this.#inFlight > 0 && this.#pub.isReady && this.#closeTimeout > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#closeTimeout)
        this.#drained = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    this.#drained = undefined
    this.#core.counts.dropped += this.#queue.length
    for (const item of this.#queue.splice(0)) this.#done(item)
    this.#core.clear()
    this.#rejectReady(new Error('RedisBus was closed before it was ready'))
    await Promise.all([this.#end(this.#pub), this.#end(this.#sub)])
  }

  /**
   * End one connection. A node-redis client destroyed while its socket is still connecting
   * keeps that socket once it connects, with no way left to close it; so a connection that is
   * (re)connecting is first given the time to finish or give up (the reconnect strategy refuses
   * once closing), at most one attempt's worth.
   */
  async #end(connection: Connection): Promise<void> {
    const deadline = Date.now() + this.#connectTimeout + this.#maxReconnectDelay + 100
    while (connection.isOpen && !connection.isReady && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    if (!connection.isOpen) return
    try {
      connection.destroy()
    } catch {
      // Already closed (node-redis throws ClientClosedError): nothing left to end.
    }
  }

  /** Send what is queued, while the publisher is up, keeping at most MAX_IN_FLIGHT sends pending. */
  #pump(): void {
    while (this.#queue.length > 0 && this.#inFlight < MAX_IN_FLIGHT && this.#pub.isReady) {
      const item = this.#queue.shift() as Queued
      item.attempts++
      this.#inFlight++
      this.#pub.publish(this.#channel, item.text).then(
        () => {
          this.#core.counts.sent++
          this.#done(item)
          this.#settled()
        },
        (err: unknown) => {
          // A send fails when its connection is lost (or the client's queue is full); try again
          // after reconnection, unless closing or tried often enough.
          this.#core.error(err)
          if (!this.#closing && item.attempts < MAX_ATTEMPTS) this.#queue.unshift(item)
          else {
            this.#core.counts.dropped++
            this.#done(item)
          }
          this.#settled()
        },
      )
    }
  }

  #settled(): void {
    this.#inFlight--
    this.#pump()
    // close() waits until nothing is pending, or nothing more can be sent.
    if (this.#drained !== undefined && this.#inFlight === 0 && (this.#queue.length === 0 || !this.#pub.isReady)) this.#drained()
  }

  async #subscribeFirst(): Promise<void> {
    if (this.#subscribing || this.#subscribed || this.#closing) return
    this.#subscribing = true
    try {
      await this.#sub.subscribe(this.#channel, this.#onRaw)
      this.#subscribed = true
      if (this.#sub.isReady) this.#subBack()
    } catch (err) {
      // The connection went away meanwhile; its next 'ready' tries again.
      if (!this.#closing) this.#core.error(err)
      this.#subFailedEarly = true
    } finally {
      this.#subscribing = false
    }
  }

  #subLost(): void {
    if (!this.#subscribed) {
      if (!this.#closing) this.#subFailedEarly = true
      return
    }
    if (this.#subUp) {
      this.#subUp = false
      this.#subDownSince = this.#core.now()
    }
  }

  #subBack(): void {
    if (this.#closing || this.#subUp) return
    this.#subUp = true
    const since = this.#subDownSince
    const first = !this.#subWasUp
    this.#subWasUp = true
    this.#subDownSince = undefined
    this.#checkReady()
    // The first subscription, made without trouble, missed nothing; any later one may have.
    if (since !== undefined && (!first || this.#subFailedEarly)) this.#core.gap(since)
  }

  #checkReady(): void {
    if (this.#readyResolved || this.#closing) return
    if (this.#pub.isReady && this.#subUp) {
      this.#readyResolved = true
      this.#resolveReady()
    }
  }
}
