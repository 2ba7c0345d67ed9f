/**
 * The invalidation bus: how one process tells the others that a session changed, so that they
 * drop or refresh their cached copy at once instead of waiting for their next revalidation.
 *
 * The bus is an accelerator, never the source of truth. Messages can be lost (a transport that
 * was down, a process that was not subscribed yet); what a lost message would have told is
 * still learnt from the storage when the cached copy is next revalidated. A bus therefore never
 * makes a request fail: publishing is synchronous, never throws because the transport is down,
 * and never waits for it.
 *
 * The vocabulary follows Spring Session's events: a `write` is a saved session
 * (`SessionCreatedEvent` or a save), a `destroy` is a deleted session (`SessionDeletedEvent` /
 * `SessionDestroyedEvent`), a `renew` is a changed id (`SessionIdChangedEvent`, where the old id
 * is the one that dies).
 *
 * @module
 */

import { randomUUID } from 'node:crypto'
import { knownOptionsCheck } from './kit/options.js'

/**
 * What happened to a session:
 * - `write`: a write was acknowledged by the storage; the record is now at `version`.
 * - `destroy`: the session was destroyed; the storage no longer has its id.
 * - `renew`: the session was moved to a new id; the storage no longer has the old id (the
 *   message's `id`). The new id is not published: receivers only need to drop the old one.
 */
export type InvalidationKind = 'write' | 'destroy' | 'renew'

/** The kinds a message can have, in a stable order. */
export const INVALIDATION_KINDS: readonly InvalidationKind[] = Object.freeze(['write', 'destroy', 'renew'])

/**
 * What a process publishes after an acknowledged change: which session, which version, what
 * happened. The bus adds {@link InvalidationMessage.origin} and {@link InvalidationMessage.sentAt}.
 *
 * @example
 * ```ts
 * bus.publish({ id: session.id, version: 7, kind: 'write' })
 * ```
 */
export interface Invalidation {
  /** The session id concerned (for `renew`, the old id). 1 to {@link MAX_INVALIDATION_ID_LENGTH} characters. */
  readonly id: string
  /**
   * The record's version after the change (`write`), or the version that was destroyed or
   * renewed away from (`destroy`, `renew`). A non-negative safe integer.
   */
  readonly version: number
  /** What happened. */
  readonly kind: InvalidationKind
}

/**
 * A message as delivered to a listener: the {@link Invalidation} plus where and when it was sent.
 *
 * How a receiver should use it: for `write`, a cached copy at `version` or newer is already
 * current and is kept; an older one is dropped (or reloaded). For `destroy` and `renew`, the
 * cached copy of `id` is dropped whatever its version, so that the next request with that id
 * reads the storage, which refuses it. A message should never do more than make a process
 * reload: the storage stays the source of truth, and a forged or replayed message then costs
 * one storage read, never a logout or a stale copy.
 */
export interface InvalidationMessage extends Invalidation {
  /** The bus that published it ({@link InvalidationBus.origin}); a bus never delivers its own messages. */
  readonly origin: string
  /** When it was published, epoch milliseconds on the publisher's clock (the source of the lag figures). */
  readonly sentAt: number
}

/**
 * Why messages may have been missed: the bus's subscription was lost (or could not be made at
 * first) and is back. Anything published in between is gone; a receiver should treat every
 * cached copy as unvalidated (revalidate before serving it).
 */
export interface InvalidationGap {
  /** When the subscription was lost (or when the bus first tried to subscribe), epoch ms by the bus's clock. */
  readonly since: number
  /** When it was back, epoch ms by the bus's clock. */
  readonly until: number
}

/**
 * A subscriber of an {@link InvalidationBus}. Its methods are called synchronously by the bus;
 * an exception thrown by one is caught, counted in {@link InvalidationBusStats.listenerErrors}
 * and reported to the bus's error handler, never thrown into the transport.
 */
export interface InvalidationListener {
  /** Called once for each message from another origin, in the order the transport delivered them. */
  onMessage(message: InvalidationMessage): void
  /** Called when messages may have been missed; see {@link InvalidationGap}. */
  onGap?(gap: InvalidationGap): void
}

/** The lag between publishing and receiving, as seen by the receiver. Clocks of different machines add their skew; negative figures count as 0. */
export interface InvalidationLag {
  /** Lag of the last message received, milliseconds; `undefined` before the first. */
  readonly lastMs: number | undefined
  /** Largest lag seen, milliseconds; `undefined` before the first message. */
  readonly maxMs: number | undefined
  /** Mean lag over all messages received, milliseconds; `undefined` before the first. */
  readonly meanMs: number | undefined
}

/** Counters of an {@link InvalidationBus}, since it was made. All counts only grow. */
export interface InvalidationBusStats {
  /** Whether the bus can publish and is subscribed right now. */
  readonly connected: boolean
  /** Messages handed to the transport and acknowledged by it. */
  readonly sent: number
  /** Messages from other origins delivered to listeners. */
  readonly received: number
  /** This bus's own messages that came back on its subscription and were skipped. */
  readonly own: number
  /** Messages waiting to be sent (the transport is down or busy). */
  readonly queued: number
  /** Messages published but never sent: the queue was full, a send failed for good, or the bus was closed first. */
  readonly dropped: number
  /** Messages received that were not valid (not JSON, wrong shape, too long); each was dropped. */
  readonly malformed: number
  /** Transport errors: failed connections, lost connections, failed sends. */
  readonly errors: number
  /** Exceptions thrown by listeners (caught). */
  readonly listenerErrors: number
  /** Times a lost connection (publisher or subscriber) was established again. */
  readonly reconnects: number
  /** Times listeners were told about a gap ({@link InvalidationListener.onGap}). */
  readonly gaps: number
  /** Publish-to-receive lag of messages received. */
  readonly lag: InvalidationLag
}

/**
 * A channel between the processes that share a storage, for telling each other about
 * acknowledged writes, destroys and renews. One bus per session manager: a bus skips its own
 * messages, so two managers on one bus would not hear each other.
 *
 * Implementations must keep these promises:
 * - {@link publish} is synchronous and never throws because the transport is down; it queues
 *   (bounded) or drops, and counts what it drops.
 * - A message is delivered to the listeners of every other bus on the channel at most once per
 *   send, and never to the bus that published it.
 * - A malformed incoming message is counted and dropped, never thrown.
 * - A lost connection is re-established on its own, with bounded backoff, until {@link close}.
 * - {@link close} is idempotent and ends every connection the bus opened.
 *
 * @example
 * ```ts
 * const bus = new RedisBus({ url: 'redis://127.0.0.1:6379' })
 * const unsubscribe = bus.subscribe({
 *   onMessage: (m) => cache.invalidate(m.id, m.version, m.kind),
 *   onGap: () => cache.distrustAll(),
 * })
 * bus.publish({ id, version, kind: 'write' })
 * // at shutdown
 * unsubscribe()
 * await bus.close()
 * ```
 */
export interface InvalidationBus {
  /** This bus's origin: stamped on every message it publishes; messages carrying it are skipped on receipt. */
  readonly origin: string
  /**
   * Send `invalidation` to every other bus on the channel. Returns at once: `true` when the
   * message was sent or queued, `false` when it was dropped (the bus is closed, or the queue was
   * full and this message was not kept). Never throws or rejects because the transport is down.
   *
   * @throws TypeError when `invalidation` is not a valid {@link Invalidation} (a programming error).
   */
  publish(invalidation: Invalidation): boolean
  /**
   * Add a listener for other origins' messages; returns the function that removes it (calling
   * it again does nothing).
   *
   * @throws TypeError when `listener` has no `onMessage` function.
   */
  subscribe(listener: InvalidationListener): () => void
  /**
   * Resolves when the bus is connected and subscribed for the first time. Never needed for
   * correctness (publish queues before that, revalidation covers what was missed); for start-up
   * checks and tests. Rejects if the bus is closed first. Pends for as long as the transport is
   * unreachable: race it with a timeout.
   */
  ready(): Promise<void>
  /**
   * Optional: resolves once every message published before the call was acknowledged by the
   * transport (for Redis: PUBLISH answered, so the message is on its way to every subscriber)
   * or dropped, or after `timeoutMs`, whichever comes first. Never rejects. The manager waits
   * for it (briefly) before a destroy or renew resolves, so that the other processes hold the
   * message before the client can replay the old id.
   */
  flush?(timeoutMs: number): Promise<void>
  /** The counters; a fresh object each call. */
  stats(): InvalidationBusStats
  /**
   * Stop: messages still queued get a short bounded chance to be sent, the rest are dropped and
   * counted; listeners are removed; every connection is ended. Idempotent: every call returns the
   * same promise. Never rejects.
   */
  close(): Promise<void>
}

/** Longest session id a message may carry. */
export const MAX_INVALIDATION_ID_LENGTH = 512

/** Longest origin a message may carry. */
export const MAX_ORIGIN_LENGTH = 256

/** Longest encoded message accepted on receipt, in UTF-16 code units; longer ones are malformed. */
export const MAX_MESSAGE_LENGTH = 2048

function isKind(value: unknown): value is InvalidationKind {
  return value === 'write' || value === 'destroy' || value === 'renew'
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_INVALIDATION_ID_LENGTH
}

function isVersion(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/** Whether `value` is a usable origin: a non-empty string of at most {@link MAX_ORIGIN_LENGTH} characters. */
export function isOrigin(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ORIGIN_LENGTH
}

/**
 * Check what a caller gives {@link InvalidationBus.publish}; returns a copy with only the known fields.
 *
 * @throws TypeError naming the field that is wrong.
 */
export function checkInvalidation(value: unknown): Invalidation {
  if (typeof value !== 'object' || value === null) throw new TypeError('an invalidation must be an object { id, version, kind }')
  const { id, version, kind } = value as Record<string, unknown>
  if (!isId(id)) throw new TypeError(`invalidation "id" must be a string of 1 to ${MAX_INVALIDATION_ID_LENGTH} characters`)
  if (!isVersion(version)) throw new TypeError(`invalidation "version" must be a non-negative safe integer, got ${String(version)}`)
  if (!isKind(kind)) throw new TypeError(`invalidation "kind" must be one of ${INVALIDATION_KINDS.join(', ')}, got ${String(kind)}`)
  return { id, version, kind }
}

/**
 * Check a listener given to {@link InvalidationBus.subscribe}.
 *
 * @throws TypeError when it has no `onMessage` function or a non-function `onGap`.
 */
export function checkListener(listener: unknown): InvalidationListener {
  if (typeof listener !== 'object' || listener === null || typeof (listener as InvalidationListener).onMessage !== 'function') {
    throw new TypeError('an invalidation listener must be an object with an onMessage(message) function')
  }
  const onGap: unknown = (listener as Record<string, unknown>)['onGap']
  if (onGap !== undefined && typeof onGap !== 'function') throw new TypeError('an invalidation listener\'s "onGap" must be a function')
  return listener as InvalidationListener
}

/** The wire form of a message: one JSON object. Transports that carry text use this and {@link decodeInvalidationMessage}. */
export function encodeInvalidationMessage(message: InvalidationMessage): string {
  return JSON.stringify({ id: message.id, version: message.version, kind: message.kind, origin: message.origin, sentAt: message.sentAt })
}

/**
 * Parse a message from its wire form. Returns `undefined` for anything that is not a valid
 * message (never throws): not text, too long, not JSON, not an object, a missing or wrong field.
 * Unknown extra fields are ignored, so that a newer publisher can add some.
 */
export function decodeInvalidationMessage(text: unknown): InvalidationMessage | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_MESSAGE_LENGTH) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
  const { id, version, kind, origin, sentAt } = parsed as Record<string, unknown>
  if (!isId(id) || !isVersion(version) || !isKind(kind) || !isOrigin(origin)) return undefined
  if (typeof sentAt !== 'number' || !Number.isFinite(sentAt) || sentAt < 0) return undefined
  return { id, version, kind, origin, sentAt }
}

/**
 * The bookkeeping every bus needs: listeners, counters, lag, and delivery that never throws.
 * Transports embed one and call {@link BusCore.deliver} / {@link BusCore.gap} when something
 * arrives; `stats()` comes from {@link BusCore.snapshot}.
 */
export class BusCore {
  /** The bus's origin. */
  readonly origin: string
  readonly #now: () => number
  readonly #onError: (err: unknown) => void
  readonly #listeners = new Set<InvalidationListener>()
  /** Counters a transport increments itself. */
  readonly counts = { sent: 0, dropped: 0, errors: 0, reconnects: 0 }
  #received = 0
  #own = 0
  #malformed = 0
  #listenerErrors = 0
  #gaps = 0
  #lagLast: number | undefined
  #lagMax: number | undefined
  #lagSum = 0

  constructor(origin: string, now: () => number, onError: (err: unknown) => void) {
    this.origin = origin
    this.#now = now
    this.#onError = onError
  }

  /** The clock, epoch ms. */
  now(): number {
    return this.#now()
  }

  /** Stamp `invalidation` (checked) as a message from this bus. */
  stamp(invalidation: Invalidation): InvalidationMessage {
    const { id, version, kind } = checkInvalidation(invalidation)
    return { id, version, kind, origin: this.origin, sentAt: this.#now() }
  }

  /** Add a listener; returns its remover. */
  add(listener: InvalidationListener): () => void {
    const checked = checkListener(listener)
    // A wrapper, so that subscribing one listener twice gives two independent subscriptions.
    const entry: InvalidationListener = { onMessage: (m) => checked.onMessage(m), onGap: (g) => checked.onGap?.(g) }
    this.#listeners.add(entry)
    return () => {
      this.#listeners.delete(entry)
    }
  }

  /** Remove every listener. */
  clear(): void {
    this.#listeners.clear()
  }

  /** Report a transport error: counted, passed to the error handler (whose own exceptions are swallowed). */
  error(err: unknown): void {
    this.counts.errors++
    this.report(err)
  }

  /** Pass `err` to the error handler without counting it. */
  report(err: unknown): void {
    try {
      this.#onError(err)
    } catch {
      // An error handler that throws must not break the transport.
    }
  }

  /** Take a received message (already decoded, or `undefined` when it was malformed) and deliver it. */
  deliver(message: InvalidationMessage | undefined): void {
    if (message === undefined) {
      this.#malformed++
      return
    }
    if (message.origin === this.origin) {
      this.#own++
      return
    }
    this.#received++
    const lag = Math.max(0, this.#now() - message.sentAt)
    this.#lagLast = lag
    this.#lagMax = this.#lagMax === undefined ? lag : Math.max(this.#lagMax, lag)
    this.#lagSum += lag
    for (const listener of [...this.#listeners]) {
      try {
        listener.onMessage(message)
      } catch (err) {
        this.#listenerErrors++
        this.report(err)
      }
    }
  }

  /** Tell listeners that messages since `since` may have been missed. */
  gap(since: number): void {
    const gap: InvalidationGap = { since, until: this.#now() }
    this.#gaps++
    for (const listener of [...this.#listeners]) {
      try {
        listener.onGap?.(gap)
      } catch (err) {
        this.#listenerErrors++
        this.report(err)
      }
    }
  }

  /** The counters, given what only the transport knows. */
  snapshot(connected: boolean, queued: number): InvalidationBusStats {
    return {
      connected,
      sent: this.counts.sent,
      received: this.#received,
      own: this.#own,
      queued,
      dropped: this.counts.dropped,
      malformed: this.#malformed,
      errors: this.counts.errors,
      listenerErrors: this.#listenerErrors,
      reconnects: this.counts.reconnects,
      gaps: this.#gaps,
      lag: { lastMs: this.#lagLast, maxMs: this.#lagMax, meanMs: this.#received === 0 ? undefined : this.#lagSum / this.#received },
    }
  }
}

/** Options every bus takes. */
export interface BusOptions {
  /** This bus's origin. Default: a random UUID (unique per bus). */
  origin?: string
  /** Clock in epoch ms, for the lag figures and gaps; for tests. Default `Date.now`. */
  now?: () => number
  /** Called with transport errors and listeners' exceptions (which are also counted). Default: nothing. */
  onError?: (err: unknown) => void
}

/**
 * Check the options every bus shares and the option names a bus knows.
 *
 * @param name The bus's class name, for messages.
 * @param known Every option name the bus takes (the shared ones included), as `optionNames` lists them.
 * @throws TypeError naming the option that is wrong.
 */
export function checkBusOptions(name: string, options: unknown, known: readonly string[]): Required<BusOptions> & Record<string, unknown> {
  if (options === undefined) options = {}
  if (typeof options !== 'object' || options === null) throw new TypeError(`${name} options must be an object`)
  const record = options as Record<string, unknown>
  knownOptionsCheck(record, name, known)
  const { origin = randomUUID(), now = Date.now, onError = () => {} } = record
  if (!isOrigin(origin)) throw new TypeError(`${name} option "origin" must be a string of 1 to ${MAX_ORIGIN_LENGTH} characters`)
  if (typeof now !== 'function') throw new TypeError(`${name} option "now" must be a function returning epoch milliseconds`)
  if (typeof onError !== 'function') throw new TypeError(`${name} option "onError" must be a function`)
  return { ...record, origin, now: now as () => number, onError: onError as (err: unknown) => void }
}

/** Check that `value` is a positive integer option; returns it. */
export function positiveIntegerOption(name: string, option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`${name} option "${option}" must be a positive integer, got ${String(value)}`)
  }
  return value
}
