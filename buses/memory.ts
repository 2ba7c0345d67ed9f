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
 * The in-process medium that {@link MemoryBus}es share: what one bus publishes reaches every
 * other bus on the same network. It can be taken down and up again to rehearse an outage.
 *
 * @example
 * ```ts
 * const network = new MemoryBusNetwork()
 * const a = new MemoryBus({ network })
 * const b = new MemoryBus({ network })
 * network.down() // a and b queue what they publish; b.stats().connected is false
 * network.up() // queued messages go out; listeners get onGap
 * ```
 */
export class MemoryBusNetwork {
  readonly #buses = new Set<MemoryBus>()
  #up = true

  /** Whether the network carries messages now. */
  get isUp(): boolean {
    return this.#up
  }

  /** Stop carrying messages: buses queue what they publish, and will report a gap when it is back. */
  down(): void {
    if (!this.#up) return
    this.#up = false
    for (const bus of this.#buses) bus._down()
  }

  /** Carry messages again: every bus reports a gap and sends what it queued. */
  up(): void {
    if (this.#up) return
    this.#up = true
    for (const bus of [...this.#buses]) bus._up()
  }

  /** Send `text` (wire form) to every bus on the network, after the current task (like a real transport). */
  _send(text: string): void {
    queueMicrotask(() => {
      for (const bus of [...this.#buses]) bus._receive(text)
    })
  }

  /** Attach a bus. */
  _attach(bus: MemoryBus): void {
    this.#buses.add(bus)
  }

  /** Detach a bus. */
  _detach(bus: MemoryBus): void {
    this.#buses.delete(bus)
  }
}

/** Options of {@link MemoryBus}. */
export interface MemoryBusOptions extends BusOptions {
  /** The network to join. Default: a network of its own (which reaches nobody else). */
  network?: MemoryBusNetwork
  /** Most messages queued while the network is down; the oldest go first. Default 1000. */
  maxQueue?: number
}

const KNOWN = optionNames<MemoryBusOptions>({ network: true, maxQueue: true, origin: true, now: true, onError: true })

/**
 * An {@link InvalidationBus} inside one process: for tests, and for several session managers in
 * one process. Messages go through the same wire form as on a real transport and arrive
 * asynchronously (after the publishing task), in order.
 *
 * @example
 * ```ts
 * const network = new MemoryBusNetwork()
 * const a = new MemoryBus({ network })
 * const b = new MemoryBus({ network })
 * b.subscribe({ onMessage: (m) => console.log(m.kind, m.id) })
 * a.publish({ id, version: 2, kind: 'write' })
 * ```
 */
export class MemoryBus implements InvalidationBus {
  readonly #core: BusCore
  readonly #network: MemoryBusNetwork
  readonly #maxQueue: number
  readonly #queue: string[] = []
  #downSince: number | undefined
  #closed = false
  readonly #closing: Promise<void>
  #resolveClosing!: () => void

  /** @throws TypeError naming the option that is wrong. */
  constructor(options: MemoryBusOptions = {}) {
    const checked = checkBusOptions('MemoryBus', options, KNOWN)
    const network = checked['network'] ?? new MemoryBusNetwork()
    if (!(network instanceof MemoryBusNetwork)) throw new TypeError('MemoryBus option "network" must be a MemoryBusNetwork')
    this.#maxQueue = positiveIntegerOption('MemoryBus', 'maxQueue', checked['maxQueue'], 1000)
    this.#core = new BusCore(checked.origin, checked.now, checked.onError)
    this.#network = network
    this.#closing = new Promise((resolve) => (this.#resolveClosing = resolve))
    network._attach(this)
    if (!network.isUp) this.#downSince = this.#core.now()
  }

  /** {@inheritDoc InvalidationBus.origin} */
  get origin(): string {
    return this.#core.origin
  }

  /**
   * {@inheritDoc InvalidationBus.flush}
   * On a network that is up, a message is delivered after the publishing task: this resolves
   * after that. One that is down holds its messages: this waits out `timeoutMs`.
   */
  flush(timeoutMs: number): Promise<void> {
    if (this.#queue.length === 0 || this.#closed) return new Promise((resolve) => queueMicrotask(resolve))
    return new Promise((resolve) => setTimeout(resolve, timeoutMs))
  }

  /** {@inheritDoc InvalidationBus.publish} */
  publish(invalidation: Invalidation): boolean {
    const message = this.#core.stamp(invalidation)
    if (this.#closed) {
      this.#core.counts.dropped++
      return false
    }
    const text = encodeInvalidationMessage(message)
    if (this.#network.isUp) {
      this.#network._send(text)
      this.#core.counts.sent++
      return true
    }
    this.#queue.push(text)
    if (this.#queue.length > this.#maxQueue) {
      this.#queue.shift()
      this.#core.counts.dropped++
    }
    return true
  }

  /** {@inheritDoc InvalidationBus.subscribe} */
  subscribe(listener: InvalidationListener): () => void {
    return this.#core.add(listener)
  }

  /** {@inheritDoc InvalidationBus.ready} */
  async ready(): Promise<void> {
    if (this.#closed) throw new Error('MemoryBus was closed')
    if (this.#network.isUp) return
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (this.#closed) {
          clearInterval(timer)
          reject(new Error('MemoryBus was closed before it was ready'))
        } else if (this.#network.isUp) {
          clearInterval(timer)
          resolve()
        }
      }, 5)
    })
  }

  /** {@inheritDoc InvalidationBus.stats} */
  stats(): InvalidationBusStats {
    return this.#core.snapshot(!this.#closed && this.#network.isUp, this.#queue.length)
  }

  /** {@inheritDoc InvalidationBus.close} */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      this.#core.counts.dropped += this.#queue.length
      this.#queue.length = 0
      this.#core.clear()
      this.#network._detach(this)
      this.#resolveClosing()
    }
    return this.#closing
  }

  /** The network went down. */
  _down(): void {
    this.#downSince = this.#core.now()
  }

  /** The network is back: report the gap, then send what was queued. */
  _up(): void {
    const since = this.#downSince
    this.#downSince = undefined
    if (this.#closed) return
    this.#core.counts.reconnects++
    if (since !== undefined) this.#core.gap(since)
    for (const text of this.#queue.splice(0)) {
      this.#network._send(text)
      this.#core.counts.sent++
    }
  }

  /** A message arrived (wire form). */
  _receive(text: unknown): void {
    if (this.#closed) return
    this.#core.deliver(decodeInvalidationMessage(text))
  }
}
