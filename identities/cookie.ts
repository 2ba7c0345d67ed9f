import Keygrip from 'keygrip'
import { COOKIE_CACHE_CONTROL, preventCaching } from '../src/cache-control.js'
import { ID_LENGTH, isValidId } from '../src/ids.js'
import { knownOptionsCheck, missingKeyCheck, optionNames } from '../src/kit/options.js'
import { RecentMap } from '../src/recent-map.js'
import { checkHosts, checkPath, createScope, type Scope } from '../src/scope.js'
import type { Identity, SessionRequest, SessionResponse } from '../src/types.js'
import { createSigner, type CookieSigner } from './cookie-signer.js'
import { putSetCookie, SetCookieLines } from './set-cookie.js'

/**
 * A key list that signs and verifies, as the `keygrip` package makes it
 * (`new Keygrip(keys, 'sha256')`). Declared here so that this package's types do not need
 * `@types/keygrip`; at run time the option takes a `Keygrip` instance.
 */
export interface KeygripLike {
  /** The signature of `data` with the first key. */
  sign(data: string): string
  /** Whether `digest` is the signature of `data` with any key. */
  verify(data: string, digest: string): boolean
  /** The index of the key that made `digest` for `data`, or -1. */
  index(data: string, digest: string): number
}

/** Options of {@link CookieIdentity}. */
export interface CookieIdentityOptions {
  /** Cookie name. Default `'sid'`. `__Host-` and `__Secure-` prefixes are checked. */
  name?: string
  /** Hostname or `*.example.com` pattern (or several) this identity serves; default every host. */
  host?: string | readonly string[]
  /** Path this identity serves (matched on segment boundaries) and the cookie's Path. Default `'/'`. */
  path?: string
  /** The cookie's Domain attribute; default none (host-only cookie). Must cover `host`. */
  domain?: string
  /** Secure attribute: `true`, `false`, or `'auto'` (Secure on HTTPS requests). Default `'auto'`. */
  secure?: boolean | 'auto'
  /** HttpOnly attribute. Default `true`. */
  httpOnly?: boolean
  /** SameSite attribute. Default `'lax'`; `'none'` requires `secure: true`. */
  sameSite?: 'lax' | 'strict' | 'none' | false
  /** Partitioned attribute (CHIPS); requires `secure: true`. */
  partitioned?: boolean
  /** Priority attribute. */
  priority?: 'low' | 'medium' | 'high'
  /**
   * Signing keys (HMAC-SHA256), newest first, each at least 32 characters; or a Keygrip made
   * with `'sha256'` (a Keygrip cannot be inspected: its algorithm is trusted as given). The first key signs; all keys verify; a cookie signed with an older key
   * is re-signed with the newest. Without keys the cookie is not signed (the id is still 256
   * random bits).
   *
   * Verification work per request is bounded: the first 4 values of
   * the cookie are paired with the first signatures in the order sent (the i-th value with the
   * i-th signature, as a browser sends a pair set together), and each value is checked against
   * its own signature once, one HMAC per key, newest first, stopping at the first match: at most
   * 4 × keys HMACs, whatever the header holds. A value signed or verified here before costs none.
   */
  keys?: readonly string[] | KeygripLike
  /** Send Expires with the session's deadline (a persistent cookie). Default `true`. */
  persistent?: boolean
  /** Trust `X-Forwarded-Proto` and `X-Forwarded-Host` (only behind a proxy that sets them). Default `false`. */
  trustProxy?: boolean
  /**
   * Verified signatures remembered, so one cookie value costs one HMAC per process: the
   * `verifiedCacheSize` most recently used always, at most twice as many. Default 100_000.
   */
  verifiedCacheSize?: number
}

/** The options of {@link CookieIdentityOptions} that say where the cookie goes and how it is sent: the sealed cookie takes them too. */
export const COOKIE_PLACEMENT_OPTIONS = {
  host: true,
  path: true,
  domain: true,
  secure: true,
  httpOnly: true,
  sameSite: true,
  partitioned: true,
  priority: true,
  persistent: true,
  trustProxy: true,
} as const

/** Every option of {@link CookieIdentityOptions}. */
const KNOWN = optionNames<CookieIdentityOptions>({ ...COOKIE_PLACEMENT_OPTIONS, name: true, keys: true, verifiedCacheSize: true })

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const DOMAIN = /^\.?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$/
/** At most this many values of one cookie name are considered, so a flood costs nothing. */
const MAX_CANDIDATES = 8
/**
 * At most this many values of a signed cookie (and as many signatures) are verified: with the
 * default three keys at most 12 HMACs per request. Enough for the same name set on a few paths
 * or domains.
 */
const MAX_SIGNED_CANDIDATES = 4
const MIN_KEY_LENGTH = 32
/** Digits of `Number.MAX_SAFE_INTEGER`: the longest version part accepted. */
const MAX_VERSION_DIGITS = 16
const DOT = 0x2e

/** What one accepted cookie value carries. */
interface Candidate {
  /** The session id. */
  readonly id: string
  /** The session version signed with it (`<id>.<version>`), or `undefined` for a bare id. */
  readonly version: number | undefined
  /**
   * The signature made with the newest key, when that key signed the value (such candidates are
   * remembered); `undefined` when an older key signed it (then {@link CookieIdentity.confirm}
   * re-signs) or the identity does not sign.
   */
  readonly sig: string | undefined
}

/** A candidate verified with the newest key, as the verified-value cache keeps it. */
type Remembered = Candidate & { readonly sig: string }

/**
 * Carries the session id in a cookie, optionally signed with HMAC-SHA256. Register one per
 * host and path (each with its own name and attributes); the manager asks those in scope.
 *
 * A response that sets or clears the cookie gets `Cache-Control: private, no-cache="Set-Cookie"`
 * (OWASP's advice), so no shared cache stores the Set-Cookie line and hands the session to
 * everyone it serves: a Cache-Control the application set before keeps its directives and
 * gains these (a `public` is dropped); one that already says `no-store` or `private` is left
 * alone.
 *
 * @example
 * ```ts
 * const identity = new CookieIdentity({ name: 'sid', host: 'app.example.com', keys: [process.env.SESSION_KEY!] })
 * const manager = new SessionManager({ storage, identities: [identity] })
 * ```
 */
export class CookieIdentity implements Identity {
  readonly name: string
  /** The cookie name. */
  readonly cookieName: string
  readonly #scope: Scope
  readonly #lines: SetCookieLines
  readonly #secure: boolean | 'auto'
  readonly #signer: CookieSigner | undefined
  readonly #persistent: boolean
  readonly #trustProxy: boolean
  readonly #nameEq: string
  readonly #sigEq: string
  readonly #sigName: string
  /** Both names a `Set-Cookie` line of this identity starts with, the signature's when it signs. */
  readonly #lineNames: readonly string[]
  /** Cookie value → what it carries and its signature made with the newest key, already verified. */
  readonly #verified: RecentMap<string, Remembered> | undefined
  /**
   * What `get` accepted from each request, for {@link CookieIdentity.versionOf},
   * {@link CookieIdentity.confirm} and `set`: the candidate itself (a remembered one as the cache
   * holds it, so nothing is allocated) or, for several, their list. Kept only for requests that
   * carry a version or an older key's signature: a request without a memo carries neither.
   */
  readonly #seen = requestMemo<Candidate | Candidate[]>()

  constructor(options: CookieIdentityOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('CookieIdentity options must be an object')
    knownOptionsCheck(options, 'CookieIdentity', KNOWN)
    const name = options.name ?? 'sid'
    if (typeof name !== 'string' || !TOKEN.test(name))
      throw new TypeError('CookieIdentity option "name" must be a cookie name token (letters, digits, !#$%&\'*+-.^_`|~)')
    const secure = options.secure ?? 'auto'
    if (secure !== true && secure !== false && secure !== 'auto') throw new TypeError('CookieIdentity option "secure" must be true, false or "auto"')
    const sameSite = options.sameSite ?? 'lax'
    if (sameSite !== 'lax' && sameSite !== 'strict' && sameSite !== 'none' && sameSite !== false) {
      throw new TypeError('CookieIdentity option "sameSite" must be "lax", "strict", "none" or false')
    }
    if (sameSite === 'none' && secure !== true)
      throw new TypeError('CookieIdentity option "sameSite": "none" requires secure: true (browsers reject it otherwise)')
    if (options.partitioned === true && secure !== true) throw new TypeError('CookieIdentity option "partitioned" requires secure: true')
    const priority = options.priority
    if (priority !== undefined && priority !== 'low' && priority !== 'medium' && priority !== 'high')
      throw new TypeError('CookieIdentity option "priority" must be "low", "medium" or "high"')
    const scope = createScope({ host: options.host, path: options.path, trustProxy: options.trustProxy }, 'CookieIdentity option')
    // The scope's form (no trailing slash): Path=/admin/ would never come back to /admin, which the scope serves.
    const path = checkPath(options.path ?? '/', 'CookieIdentity option "path"')
    const domain = checkDomain(options.domain, checkHosts(options.host, 'CookieIdentity option "host"'))
    if (name.startsWith('__Host-')) {
      if (secure !== true) throw new TypeError('CookieIdentity option "secure" must be true for a __Host- cookie name')
      if (domain !== undefined) throw new TypeError('CookieIdentity option "domain" is not allowed with a __Host- cookie name')
      if (path !== '/') throw new TypeError('CookieIdentity option "path" must be "/" for a __Host- cookie name')
    }
    if (name.startsWith('__Secure-') && secure !== true) throw new TypeError('CookieIdentity option "secure" must be true for a __Secure- cookie name')
    for (const flag of ['httpOnly', 'persistent', 'trustProxy', 'partitioned'] as const) {
      if (options[flag] !== undefined && typeof options[flag] !== 'boolean') throw new TypeError(`CookieIdentity option "${flag}" must be a boolean`)
    }
    const cacheSize = options.verifiedCacheSize ?? 100_000
    if (!Number.isInteger(cacheSize) || cacheSize < 1) throw new TypeError('CookieIdentity option "verifiedCacheSize" must be a positive integer')

    this.cookieName = name
    this.name = `cookie:${name}`
    this.#scope = scope
    this.#lines = new SetCookieLines({ path, domain, priority, sameSite, httpOnly: options.httpOnly ?? true, partitioned: options.partitioned ?? false })
    this.#secure = secure
    this.#signer = checkKeys(options.keys)
    this.#persistent = options.persistent ?? true
    this.#trustProxy = options.trustProxy ?? false
    this.#nameEq = `${name}=`
    this.#sigEq = `${name}.sig=`
    this.#sigName = `${name}.sig`
    this.#verified = this.#signer === undefined ? undefined : new RecentMap(cacheSize)
    this.#lineNames = this.#signer === undefined ? [this.#nameEq] : [this.#nameEq, this.#sigEq]
  }

  /** Whether the request's host and path are in this identity's scope. */
  matches(req: SessionRequest): boolean {
    return this.#scope.matches(req)
  }

  /**
   * Session ids carried by this cookie, in the order the browser sent them; invalid ones left
   * out. A value is `<id>` or `<id>.<version>` (a version written by {@link CookieIdentity.set}),
   * signed as a whole when keys are set: a malformed version part makes the value invalid, like a
   * bad signature.
   */
  get(req: SessionRequest): readonly string[] {
    const header = req.headers.cookie
    if (typeof header !== 'string' || header.length === 0) return this.#none(req)
    const values = cookieValues(header, this.#nameEq, this.#signer === undefined ? MAX_CANDIDATES : MAX_SIGNED_CANDIDATES)
    if (values === undefined) return this.#none(req)
    if (this.#signer === undefined) return this.#unsigned(req, values)
    const sigs = cookieValues(header, this.#sigEq, MAX_SIGNED_CANDIDATES)
    if (sigs === undefined) return this.#none(req)
    const ids: string[] = []
    let kept: Candidate | Candidate[] | undefined
    const pairs = Math.min(values.length, sigs.length)
    for (let i = 0; i < pairs; i++) {
      const candidate = this.#verify(values[i]!, sigs[i]!)
      if (candidate === undefined) continue
      ids.push(candidate.id)
      if (candidate.version !== undefined || candidate.sig === undefined) kept = keep(kept, candidate)
    }
    this.#seen.set(req, kept)
    return ids
  }

  /**
   * The version the request's cookie carries for candidate `id` (the highest, if several values
   * carry that id), or `undefined` for a cookie issued without one. Answers from what
   * {@link CookieIdentity.get} verified for this request: no parsing, no HMAC.
   */
  versionOf(req: SessionRequest, id: string): number | undefined {
    return this.#candidate(req, id)?.version
  }

  /**
   * Issue the cookie (signed when keys are set) with the session's deadline. With `version`
   * (a safe non-negative integer) the value is `<id>.<version>`, signed as a whole, and
   * {@link CookieIdentity.versionOf} reads it back on the client's next requests. Without one,
   * the version this request's cookie carried for the same id is kept (re-issuing a cookie for
   * a later deadline does not lose it); a cookie for an id the request did not carry has none.
   */
  set(req: SessionRequest, res: SessionResponse, id: string, expiresAt: number, version?: number): void {
    if (version === undefined) version = this.#candidate(req, id)?.version
    else if (!(Number.isSafeInteger(version) && version >= 0)) {
      throw new TypeError(`CookieIdentity: a session version must be a safe non-negative integer (got ${String(version)})`)
    }
    const value = version === undefined ? id : `${id}.${version}`
    this.#write(req, res, value, this.#persistent && expiresAt > 0 ? expiresAt : undefined)
    preventCaching(res, COOKIE_CACHE_CONTROL)
  }

  /** Re-sign a cookie that an older key signed, keeping all its attributes and its version. */
  confirm(req: SessionRequest, res: SessionResponse, id: string, expiresAt: number): void {
    if (this.#verified === undefined || res.headersSent) return
    const candidate = this.#candidate(req, id)
    if (candidate === undefined || candidate.sig !== undefined) return
    this.set(req, res, id, expiresAt, candidate.version)
  }

  /** Clear the cookie with the same Path and Domain it was set with. */
  remove(req: SessionRequest, res: SessionResponse): void {
    this.#write(req, res, '', 0)
    preventCaching(res, COOKIE_CACHE_CONTROL)
  }

  /**
   * Take back the cookie {@link CookieIdentity.set} put on `res` for `id` (with any version) and
   * its signature cookie; every other Set-Cookie line stays, the application's and other
   * identities' alike. Nothing changes once the headers are sent, or when the response's cookie
   * of this name is not one for `id` (a later set replaced it).
   */
  withdraw(_req: SessionRequest, res: SessionResponse, id: string): void {
    if (res.headersSent) return
    const current = res.getHeader('set-cookie')
    if (current === undefined) return
    const lines = typeof current === 'object' ? current : [String(current)]
    // `set` overwrites: the response holds one line of this name, and one of its signature.
    const value = lines.map((line) => pairOf(line, this.#nameEq)).find((found) => found !== undefined && idOf(found) === id)
    if (value === undefined) return
    const sig = this.#signer === undefined ? undefined : (this.#verified!.get(value)?.sig ?? this.#signer.sign(this.#nameEq + value))
    const kept = lines.filter((line) => pairOf(line, this.#nameEq) !== value && (sig === undefined || pairOf(line, this.#sigEq) !== sig))
    if (kept.length > 0) res.setHeader('Set-Cookie', kept)
    else if (res.removeHeader !== undefined) res.removeHeader('Set-Cookie')
    else res.setHeader('Set-Cookie', kept)
  }

  /** No candidate (and no memo left from an earlier call with this request object). */
  #none(req: SessionRequest): readonly string[] {
    this.#seen.set(req, undefined)
    return NONE
  }

  /** The accepted candidate of `req` for `id` (of several with that id, the one with the highest version). */
  #candidate(req: SessionRequest, id: string): Candidate | undefined {
    const kept = this.#seen.get(req)
    if (kept === undefined || !Array.isArray(kept)) return kept?.id === id ? kept : undefined
    let best: Candidate | undefined
    for (const candidate of kept) {
      if (candidate.id === id && (best === undefined || (candidate.version ?? -1) > (best.version ?? -1))) best = candidate
    }
    return best
  }

  #unsigned(req: SessionRequest, values: string[]): readonly string[] {
    const ids: string[] = []
    let kept: Candidate | Candidate[] | undefined
    for (const value of values) {
      if (isValidId(value)) {
        ids.push(value)
        continue
      }
      const candidate = parseValue(value, undefined)
      if (candidate === undefined) continue
      ids.push(candidate.id)
      kept = keep(kept, candidate)
    }
    this.#seen.set(req, kept)
    return ids
  }

  /**
   * The candidate `value` carries if `sig` (its own signature) signs it: no HMAC for a value
   * signed or verified here before, else one per key tried (newest first).
   */
  #verify(value: string, sig: string): Candidate | undefined {
    const known = this.#verified!.get(value)
    if (known !== undefined && sameString(sig, known.sig)) return known
    // Only now the shape check: a remembered value passed it before its first HMAC, and the
    // regex costs more than the lookup on every cache hit.
    if (!isShaped(value)) return undefined
    const index = this.#signer!.index(this.#nameEq + value, sig)
    if (index === -1) return undefined
    if (index !== 0) return parseValue(value, undefined)
    // Remembered for long: copies, not slices that would keep the whole Cookie header alive.
    return this.#remember(detach(value), detach(sig))
  }

  /** Remember that the newest key's signature of `value` is `sig`, so the value costs no HMAC again. */
  #remember(value: string, sig: string): Remembered | undefined {
    const candidate = parseValue(value, sig) as Remembered | undefined
    if (candidate !== undefined) this.#verified!.set(value, candidate)
    return candidate
  }

  #isSecure(req: SessionRequest): boolean {
    if (this.#secure !== 'auto') return this.#secure
    const socket = req.socket as { encrypted?: unknown } | null | undefined
    if (socket?.encrypted === true) return true
    if ((req as { protocol?: unknown }).protocol === 'https') return true
    if (this.#trustProxy) {
      const proto = req.headers['x-forwarded-proto']
      const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase()
      return first === 'https'
    }
    return false
  }

  /**
   * Set the cookie to `value` (Expires at `expiresAt`, none when `undefined`) and, when signed,
   * its signature cookie with the same attributes (signed with the newest key and remembered, so
   * the client's next request costs no HMAC; a cleared cookie clears its signature). Earlier
   * lines of these two cookies on the response are replaced.
   */
  #write(req: SessionRequest, res: SessionResponse, value: string, expiresAt: number | undefined): void {
    const secure = this.#isSecure(req)
    const line = this.#lines.line(this.cookieName, value, expiresAt, secure)
    if (this.#signer === undefined) return putSetCookie(res, this.#lineNames, [line])
    let sig = ''
    if (value !== '') {
      sig = this.#signer.sign(this.#nameEq + value)
      this.#remember(value, sig)
    }
    putSetCookie(res, this.#lineNames, [line, this.#lines.line(this.#sigName, sig, expiresAt, secure)])
  }
}

const NONE: readonly string[] = Object.freeze([])

/** Something remembered per request object, for as long as the request lives. */
interface RequestMemo<T> {
  get(req: object): T | undefined
  /** Remember `value` (or, with `undefined`, forget what was remembered) for `req`. */
  set(req: object, value: T | undefined): void
}

/**
 * A per-request memo held in a private field stamped on the request object (the field is
 * invisible to any code but this memo's, and goes with the request). A WeakMap keyed by request
 * would cost about 100 ns per request on the cache-hit path (a new key in its ephemeron table,
 * swept by every GC) against a few for a field store. Request objects that cannot take a
 * field (frozen, sealed) use a WeakMap.
 */
function requestMemo<T>(): RequestMemo<T> {
  const fallback = new WeakMap<object, T>()
  class Stampable {
    constructor(target: object) {
      // A constructor that returns an object makes that object `this` for the subclass's fields.
      return target
    }
  }
  class Stamp extends Stampable {
    #value: T | undefined = undefined
    static get(req: object): T | undefined {
      if (#value in req) return req.#value
      return Object.isExtensible(req) ? undefined : fallback.get(req)
    }
    static set(req: object, value: T | undefined): void {
      if (#value in req) req.#value = value
      else if (!Object.isExtensible(req)) {
        if (value === undefined) fallback.delete(req)
        else fallback.set(req, value)
      } else if (value !== undefined) new Stamp(req).#value = value
    }
  }
  return Stamp
}

/** `kept` with `candidate` added: the candidate alone first, a list once there are several. */
function keep(kept: Candidate | Candidate[] | undefined, candidate: Candidate): Candidate | Candidate[] {
  if (kept === undefined) return candidate
  if (Array.isArray(kept)) {
    kept.push(candidate)
    return kept
  }
  return [kept, candidate]
}

/** The value of a Set-Cookie `line` when it sets the cookie `nameEq` (`"sid="`), else `undefined`. */
function pairOf(line: string, nameEq: string): string | undefined {
  if (!line.startsWith(nameEq)) return undefined
  const end = line.indexOf(';', nameEq.length)
  return line.slice(nameEq.length, end === -1 ? line.length : end)
}

/** The session id a cookie value carries (`<id>` or `<id>.<version>`), or `undefined` for any other value. */
function idOf(value: string): string | undefined {
  return parseValue(value, undefined)?.id
}

/** Whether a cookie value has the shape `<id>` or `<id>.<version>` (checked before any HMAC). */
function isShaped(value: string): boolean {
  if (value.length === ID_LENGTH) return isValidId(value)
  return versionAt(value) !== undefined && isValidId(value.slice(0, ID_LENGTH))
}

/** What a well-shaped or malformed cookie value carries; `undefined` when it is malformed. */
function parseValue(value: string, sig: string | undefined): Candidate | undefined {
  if (value.length === ID_LENGTH) return isValidId(value) ? { id: value, version: undefined, sig } : undefined
  const version = versionAt(value)
  if (version === undefined) return undefined
  const id = value.slice(0, ID_LENGTH)
  return isValidId(id) ? { id, version, sig } : undefined
}

/**
 * The version part of `<id>.<version>`: ASCII digits without sign, spaces or a leading zero
 * (`0` itself is allowed), at most `Number.MAX_SAFE_INTEGER`. `undefined` when there is no such
 * part, so the value is refused whole.
 */
function versionAt(value: string): number | undefined {
  const from = ID_LENGTH + 1
  const digits = value.length - from
  if (digits < 1 || digits > MAX_VERSION_DIGITS || value.charCodeAt(ID_LENGTH) !== DOT) return undefined
  if (value.charCodeAt(from) === 0x30) return digits === 1 ? 0 : undefined
  let version = 0
  for (let i = from; i < value.length; i++) {
    const digit = value.charCodeAt(i) - 0x30
    if (digit < 0 || digit > 9) return undefined
    version = version * 10 + digit
  }
  return version <= Number.MAX_SAFE_INTEGER ? version : undefined
}

/** A copy of a (short, ASCII) string that does not share the memory of the string it was cut from. */
function detach(value: string): string {
  return Buffer.from(value, 'latin1').toString('latin1')
}

/** String equality in time independent of where they differ (signatures are compared with it). */
function sameString(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return difference === 0
}

/**
 * Every value of the cookie `nameEq` (`"sid="`) in a Cookie header, in order, at most `limit`
 * (default {@link MAX_CANDIDATES}); `undefined` when there is none. A name only counts at the
 * start of a pair, so `xsid=` is not `sid=`. Surrounding quotes are removed.
 */
export function cookieValues(header: string, nameEq: string, limit = MAX_CANDIDATES): string[] | undefined {
  let found: string[] | undefined
  let from = 0
  while (true) {
    const at = header.indexOf(nameEq, from)
    if (at === -1) return found
    from = at + nameEq.length
    if (!startsPair(header, at)) continue
    let end = header.indexOf(';', from)
    if (end === -1) end = header.length
    let value = header.slice(from, end).trim()
    if (value.length >= 2 && value.charCodeAt(0) === 0x22 && value.charCodeAt(value.length - 1) === 0x22) value = value.slice(1, -1)
    ;(found ??= []).push(value)
    if (found.length === limit) return found
    from = end
  }
}

function startsPair(header: string, at: number): boolean {
  for (let i = at - 1; i >= 0; i--) {
    const c = header.charCodeAt(i)
    if (c === 0x3b) return true
    if (c !== 0x20 && c !== 0x09) return false
  }
  return true
}

function checkKeys(keys: CookieIdentityOptions['keys']): CookieSigner | undefined {
  if (keys === undefined) return undefined
  if (keys instanceof Keygrip) return createSigner(keys)
  if (!Array.isArray(keys) || keys.length === 0) throw new TypeError('CookieIdentity option "keys" must be a non-empty array of secret strings (or a Keygrip)')
  for (const [index, key] of (keys as unknown[]).entries()) {
    missingKeyCheck(key, index, 'CookieIdentity option "keys"')
    if (typeof key !== 'string' || key.length < MIN_KEY_LENGTH) {
      throw new TypeError(`CookieIdentity option "keys" must hold secrets of at least ${MIN_KEY_LENGTH} characters each (HMAC-SHA256 wants 256-bit keys)`)
    }
  }
  return createSigner(keys as string[])
}

function checkDomain(domain: unknown, hosts: string[] | undefined): string | undefined {
  if (domain === undefined) return undefined
  if (typeof domain !== 'string' || !DOMAIN.test(domain.toLowerCase()))
    throw new TypeError('CookieIdentity option "domain" must be a domain name such as "example.com"')
  const bare = domain.toLowerCase().replace(/^\./, '')
  if (hosts !== undefined) {
    for (const host of hosts) {
      const name = host.startsWith('*.') ? host.slice(2) : host
      if (name !== bare && !name.endsWith(`.${bare}`)) {
        throw new TypeError(`CookieIdentity option "domain" (${domain}) does not cover option "host" (${host}): the browser would refuse the cookie`)
      }
    }
  }
  return bare
}
