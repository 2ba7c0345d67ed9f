import { SessionError } from '../src/errors.js'
import { isValidId } from '../src/ids.js'
import { knownOptionsCheck, optionNames } from '../src/kit/options.js'
import { RecentMap } from '../src/recent-map.js'
import type { CarriedSession, Identity, OpenedSession, SessionCarrier, SessionData, SessionRequest, SessionResponse } from '../src/types.js'
import { freezeJson, isPlainObject } from '../src/values.js'
import { COOKIE_PLACEMENT_OPTIONS, CookieIdentity, cookieValues, type CookieIdentityOptions } from './cookie.js'
import { Sealer } from './seal.js'

export type { CarriedSession, OpenedSession, SessionCarrier } from '../src/types.js'

/** Options of {@link SealedCookieIdentity}: the cookie attributes of {@link CookieIdentityOptions}, and the sealing. */
export interface SealedCookieIdentityOptions extends Omit<CookieIdentityOptions, 'keys' | 'verifiedCacheSize' | 'name'> {
  /** Cookie name. Default `'session'`. `__Host-` and `__Secure-` prefixes are checked. */
  name?: string
  /**
   * Secrets, newest first, each at least 32 characters. The first seals; every one opens, and a
   * cookie sealed with an older one is sealed again with the newest on that response. Drop a
   * secret to make every cookie it sealed worthless.
   */
  keys: readonly string[]
  /**
   * Longest `Set-Cookie` line, name, value and attributes counted, in bytes. A write that would
   * make it longer is refused with `SESSION_TOO_LARGE` and changes nothing. Default 4096, what
   * every browser keeps; at most 16384.
   */
  maxBytes?: number
  /**
   * Opened cookie values remembered, so one value is decrypted once per process: the this many
   * most recently used are always held, at most twice as many. Default 10_000.
   */
  openedCacheSize?: number
}

/** Every option of {@link SealedCookieIdentityOptions}. */
const KNOWN = optionNames<SealedCookieIdentityOptions>({ ...COOKIE_PLACEMENT_OPTIONS, name: true, keys: true, maxBytes: true, openedCacheSize: true })

/** Counters of a {@link SealedCookieIdentity}, for monitoring. */
export interface SealedCookieStats {
  /** Cookie values decrypted (each distinct value once, while remembered). */
  opened: number
  /** Requests whose cookie value was already opened in this process. */
  reused: number
  /** Cookies sealed. */
  sealed: number
  /** Values that opened with an older key (each is sealed again with the newest). */
  olderKey: number
  /** Values that were no session, all reasons together. */
  rejected: number
  /** …because they are not canonical base64url or too short to be sealed. */
  malformed: number
  /** …because no current key sealed them (a removed key, another application). */
  unknownKey: number
  /** …because they did not authenticate: changed, truncated, or sealed for another identity. */
  forged: number
  /** …because they are longer than any cookie of `maxBytes` can be, left undecoded. */
  oversized: number
  /** …because they authenticated but do not hold a session record (another format). */
  invalid: number
  /** Writes refused with `SESSION_TOO_LARGE`. */
  tooLarge: number
}

const MIN_MAX_BYTES = 256
const MAX_MAX_BYTES = 16_384

/**
 * Keeps the whole session in one cookie, sealed with AES-256-GCM: the client can neither read
 * nor change it, and the server stores nothing. Each secret in `keys` is stretched with
 * HKDF-SHA256 into a key bound to this identity's name, so a cookie sealed by another identity
 * never opens here. The seal carries the id, the data, the creation time, the idle and absolute
 * deadlines and a version; a cookie that does not open is no session. A stateless session
 * cannot be revoked before its deadline: see the identities guide for what to do instead.
 *
 * @example
 * ```ts
 * const manager = new SessionManager({
 *   identities: [new SealedCookieIdentity({ name: 'session', keys: [process.env.SESSION_SECRET!] })],
 * })
 * ```
 */
export class SealedCookieIdentity implements Identity {
  readonly name: string
  /** The cookie name. */
  readonly cookieName: string
  /** Longest `Set-Cookie` line this identity writes, in bytes. */
  readonly maxBytes: number
  /** This identity as the manager uses it: the session travels in the cookie. */
  readonly carrier: SessionCarrier = this
  readonly #cookie: CookieIdentity
  readonly #sealer: Sealer
  readonly #nameEq: string
  /** Longest value a cookie of `maxBytes` can carry: anything longer is not decoded. */
  readonly #maxValueLength: number
  /** Opened values and what they hold; sealed values are remembered too. */
  readonly #opened: RecentMap<string, OpenedSession>
  readonly #stats: SealedCookieStats = {
    opened: 0,
    reused: 0,
    sealed: 0,
    olderKey: 0,
    rejected: 0,
    malformed: 0,
    unknownKey: 0,
    forged: 0,
    oversized: 0,
    invalid: 0,
    tooLarge: 0,
  }

  constructor(options: SealedCookieIdentityOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('SealedCookieIdentity options must be an object with "keys"')
    const { keys, maxBytes = 4096, openedCacheSize = 10_000, ...attributes } = options
    const excess = attributes as Record<string, unknown>
    if (excess.verifiedCacheSize !== undefined) throw new TypeError('SealedCookieIdentity has no option "verifiedCacheSize" (see "openedCacheSize")')
    knownOptionsCheck(options, 'SealedCookieIdentity', KNOWN)
    if (!Number.isSafeInteger(maxBytes) || maxBytes < MIN_MAX_BYTES || maxBytes > MAX_MAX_BYTES) {
      throw new TypeError(`SealedCookieIdentity option "maxBytes" must be an integer from ${MIN_MAX_BYTES} to ${MAX_MAX_BYTES}`)
    }
    if (!Number.isSafeInteger(openedCacheSize) || openedCacheSize < 1)
      throw new TypeError('SealedCookieIdentity option "openedCacheSize" must be a positive integer')
    const name = attributes.name ?? 'session'
    try {
      // The cookie identity checks and writes the attributes; it never signs here (the seal authenticates).
      this.#cookie = new CookieIdentity({ ...attributes, name })
    } catch (err) {
      if (err instanceof TypeError) throw new TypeError(err.message.replace(/^CookieIdentity/, 'SealedCookieIdentity'))
      throw err
    }
    this.cookieName = name
    this.name = `sealed:${name}`
    this.maxBytes = maxBytes
    this.#sealer = new Sealer(keys, this.name, 'SealedCookieIdentity option "keys"')
    this.#nameEq = `${name}=`
    this.#maxValueLength = maxBytes - this.#nameEq.length
    this.#opened = new RecentMap(openedCacheSize)
  }

  /** Whether the request's host and path are in this identity's scope. */
  matches(req: SessionRequest): boolean {
    return this.#cookie.matches(req)
  }

  /** A sealed cookie carries no id for a storage: the manager asks {@link SealedCookieIdentity.carrier} instead. */
  get(_req: SessionRequest): readonly string[] {
    return NONE
  }

  /** Not used: a sealed session is written with {@link SealedCookieIdentity.seal}, which needs the whole session. */
  set(_req: SessionRequest, _res: SessionResponse, _id: string, _expiresAt: number): void {
    throw new SessionError('SESSION_INVALID_STATE', `${this.name} carries the whole session, not an id: it is written with seal()`)
  }

  /**
   * The first session a `name=` cookie of the request carries that `accept` takes. Each
   * distinct value is decrypted once per process while remembered; a value that does not open
   * (changed, truncated, another identity's, a removed key, not base64url, longer than
   * `maxBytes` allows) is counted in {@link SealedCookieIdentity.stats} and skipped.
   */
  open(req: SessionRequest, accept?: (session: CarriedSession) => boolean): OpenedSession | undefined {
    const header = req.headers.cookie
    if (typeof header !== 'string' || header.length === 0) return undefined
    const values = cookieValues(header, this.#nameEq)
    if (values === undefined) return undefined
    for (const value of values) {
      let opened = this.#opened.get(value)
      if (opened !== undefined) this.#stats.reused++
      else {
        opened = this.#unseal(value)
        if (opened === undefined) continue
      }
      if (accept === undefined || accept(opened.session)) return opened
    }
    return undefined
  }

  /**
   * Seal `session` into the cookie, with the attributes of the cookie identity and Expires at
   * its idle deadline. Throws, leaving the response as it was, `SESSION_HEADERS_SENT` once the
   * headers are sent and `SESSION_TOO_LARGE` when the whole `Set-Cookie` line would be longer
   * than `maxBytes`. The value is remembered as opened.
   */
  seal(req: SessionRequest, res: SessionResponse, session: CarriedSession): void {
    if (res.headersSent) {
      throw new SessionError(
        'SESSION_HEADERS_SENT',
        'the response headers were already sent, so the sealed session cannot be written; write before responding',
        {
          sessionId: session.id,
        },
      )
    }
    const plaintext = Buffer.from(encodePayload(session), 'utf8')
    const bytes = this.#lineLength(req, session.expiresAt, Sealer.sealedLength(plaintext.length))
    if (bytes > this.maxBytes) {
      this.#stats.tooLarge++
      throw new SessionError('SESSION_TOO_LARGE', `the sealed session would make a Set-Cookie line of ${bytes} bytes, over maxBytes (${this.maxBytes})`, {
        sessionId: session.id,
      })
    }
    const value = this.#sealer.seal(plaintext)
    this.#cookie.set(req, res, value, session.expiresAt)
    this.#stats.sealed++
    this.#opened.set(value, { session: Object.isFrozen(session) ? session : Object.freeze({ ...session }), olderKey: false })
  }

  /** Clear the cookie with the same Path and Domain it was set with. */
  remove(req: SessionRequest, res: SessionResponse): void {
    this.#cookie.remove(req, res)
  }

  /** Counters since construction: opened, reused, sealed, and each kind of value refused. */
  stats(): SealedCookieStats {
    return { ...this.#stats }
  }

  #unseal(value: string): OpenedSession | undefined {
    const stats = this.#stats
    if (value.length > this.#maxValueLength) return this.#reject('oversized')
    const result = this.#sealer.open(value)
    if (typeof result === 'string') return this.#reject(result === 'unknown-key' ? 'unknownKey' : result)
    const session = decodePayload(result.plaintext)
    if (session === undefined) return this.#reject('invalid')
    stats.opened++
    const olderKey = result.keyIndex !== 0
    if (olderKey) stats.olderKey++
    const opened: OpenedSession = Object.freeze({ session, olderKey })
    // A copy, not a slice that would keep the whole Cookie header alive.
    this.#opened.set(Buffer.from(value, 'latin1').toString('latin1'), opened)
    return opened
  }

  #reject(reason: 'malformed' | 'unknownKey' | 'forged' | 'oversized' | 'invalid'): undefined {
    this.#stats[reason]++
    this.#stats.rejected++
    return undefined
  }

  /** Bytes of the `Set-Cookie` line for a value of `valueLength` characters: the attributes as the cookie identity writes them. */
  #lineLength(req: SessionRequest, expiresAt: number, valueLength: number): number {
    const probe = new LineProbe()
    this.#cookie.set(req, probe, 'x', expiresAt)
    return probe.bytes - 1 + valueLength
  }
}

const NONE: readonly string[] = Object.freeze([])

/** A response that only measures the last `Set-Cookie` line written to it. */
class LineProbe implements SessionResponse {
  readonly headersSent = false
  bytes = 0
  getHeader(): undefined {
    return undefined
  }
  setHeader(name: string, value: number | string | readonly string[]): this {
    if (name.toLowerCase() === 'set-cookie') this.bytes = Buffer.byteLength(typeof value === 'object' ? (value.at(-1) ?? '') : String(value))
    return this
  }
}

/** The sealed plaintext: a JSON array, shorter than an object with names. */
function encodePayload(session: CarriedSession): string {
  const { id, createdAt, touchedAt, expiresAt, absoluteExpiresAt, version, data } = session
  return JSON.stringify([id, createdAt, touchedAt, expiresAt, absoluteExpiresAt, version, data])
}

/** The session in an opened plaintext, its data deep-frozen; `undefined` unless it has exactly the expected shape. */
function decodePayload(plaintext: Buffer): CarriedSession | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(plaintext.toString('utf8'))
  } catch {
    return undefined
  }
  if (!Array.isArray(parsed) || parsed.length !== 7) return undefined
  const [id, createdAt, touchedAt, expiresAt, absoluteExpiresAt, version, data] = parsed as unknown[]
  if (!isValidId(id) || !isPlainObject(data) || !Number.isSafeInteger(version) || (version as number) < 1) return undefined
  for (const time of [createdAt, touchedAt, expiresAt, absoluteExpiresAt]) if (!Number.isSafeInteger(time) || (time as number) < 0) return undefined
  if (!freezeJson(data, 0)) return undefined
  return Object.freeze({
    id,
    data: data as SessionData,
    createdAt: createdAt as number,
    touchedAt: touchedAt as number,
    expiresAt: expiresAt as number,
    absoluteExpiresAt: absoluteExpiresAt as number,
    version: version as number,
  })
}
