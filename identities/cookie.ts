import Cookies from 'cookies'
import Keygrip from 'keygrip'
import { LRUCache } from 'lru-cache'
import { isValidId } from '../src/ids.js'
import { checkHosts, checkPath, createScope, type Scope } from '../src/scope.js'
import type { Identity, SessionRequest, SessionResponse } from '../src/types.js'

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
   */
  keys?: readonly string[] | KeygripLike
  /** Send Expires with the session's deadline (a persistent cookie). Default `true`. */
  persistent?: boolean
  /** Trust `X-Forwarded-Proto` and `X-Forwarded-Host` (only behind a proxy that sets them). Default `false`. */
  trustProxy?: boolean
  /** Verified signatures remembered, so one cookie value costs one HMAC per process. Default 100_000. */
  verifiedCacheSize?: number
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const DOMAIN = /^\.?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$/
/** At most this many values of one cookie name are considered, so a flood costs nothing. */
const MAX_CANDIDATES = 8
const MIN_KEY_LENGTH = 32

/**
 * Carries the session id in a cookie, optionally signed with HMAC-SHA256. Register one per
 * host and path (each with its own name and attributes); the manager asks those in scope.
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
  readonly #path: string
  readonly #domain: string | undefined
  readonly #secure: boolean | 'auto'
  readonly #httpOnly: boolean
  readonly #sameSite: 'lax' | 'strict' | 'none' | false
  readonly #partitioned: boolean
  readonly #priority: 'low' | 'medium' | 'high' | undefined
  readonly #keys: Keygrip | undefined
  readonly #persistent: boolean
  readonly #trustProxy: boolean
  readonly #nameEq: string
  readonly #sigEq: string
  /** id → signature made with the newest key and already verified. */
  readonly #verified: LRUCache<string, string> | undefined

  constructor(options: CookieIdentityOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('CookieIdentity options must be an object')
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
    this.#path = path
    this.#domain = domain
    this.#secure = secure
    this.#httpOnly = options.httpOnly ?? true
    this.#sameSite = sameSite
    this.#partitioned = options.partitioned ?? false
    this.#priority = priority
    this.#keys = checkKeys(options.keys)
    this.#persistent = options.persistent ?? true
    this.#trustProxy = options.trustProxy ?? false
    this.#nameEq = `${name}=`
    this.#sigEq = `${name}.sig=`
    this.#verified = this.#keys === undefined ? undefined : new LRUCache({ max: cacheSize })
  }

  /** Whether the request's host and path are in this identity's scope. */
  matches(req: SessionRequest): boolean {
    return this.#scope.matches(req)
  }

  /** Session ids carried by this cookie, in the order the browser sent them; invalid ones left out. */
  get(req: SessionRequest): readonly string[] {
    const header = req.headers.cookie
    if (typeof header !== 'string' || header.length === 0) return NONE
    const values = cookieValues(header, this.#nameEq)
    if (values === undefined) return NONE
    if (this.#keys === undefined) return values.filter(isValidId)
    const sigs = cookieValues(header, this.#sigEq)
    if (sigs === undefined) return NONE
    const ids: string[] = []
    for (const value of values) if (this.#verify(value, sigs)) ids.push(value)
    return ids
  }

  /** Issue the cookie (signed when keys are set) with the session's deadline. */
  set(req: SessionRequest, res: SessionResponse, id: string, expiresAt: number): void {
    this.#cookies(req, res).set(this.cookieName, id, this.#attributes(req, expiresAt))
  }

  /** Re-sign a cookie that an older key signed, keeping all its attributes. */
  confirm(req: SessionRequest, res: SessionResponse, id: string, expiresAt: number): void {
    if (this.#verified === undefined || this.#verified.has(id) || res.headersSent) return
    this.set(req, res, id, expiresAt)
  }

  /** Clear the cookie with the same Path and Domain it was set with. */
  remove(req: SessionRequest, res: SessionResponse): void {
    const attributes = this.#attributes(req, 0)
    attributes.expires = new Date(0)
    this.#cookies(req, res).set(this.cookieName, '', attributes)
  }

  #verify(value: string, sigs: string[]): boolean {
    const keys = this.#keys!
    const verified = this.#verified!
    const known = verified.get(value)
    if (known !== undefined && sigs.some((sig) => sameString(sig, known))) return true
    // Only now the shape check: a remembered value passed it before its first HMAC, and the
    // regex costs more than the lookup on every cache hit.
    if (!isValidId(value)) return false
    const data = this.#nameEq + value
    for (const sig of sigs) {
      const index = keys.index(data, sig)
      if (index === 0) verified.set(value, sig)
      if (index !== -1) return true
    }
    return false
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

  #attributes(req: SessionRequest, expiresAt: number): Cookies.SetOption {
    const attributes: Cookies.SetOption = {
      path: this.#path,
      httpOnly: this.#httpOnly,
      secure: this.#isSecure(req),
      signed: this.#keys !== undefined,
      overwrite: true,
    }
    if (this.#sameSite !== false) attributes.sameSite = this.#sameSite
    if (this.#domain !== undefined) attributes.domain = this.#domain
    if (this.#partitioned) attributes.partitioned = true
    if (this.#priority !== undefined) attributes.priority = this.#priority
    if (this.#persistent && expiresAt > 0) attributes.expires = new Date(expiresAt)
    return attributes
  }

  #cookies(req: SessionRequest, res: SessionResponse): Cookies {
    const options: Cookies.Option = { secure: this.#isSecure(req) }
    if (this.#keys !== undefined) options.keys = this.#keys
    return new Cookies(req as never, res as never, options)
  }
}

const NONE: readonly string[] = Object.freeze([])

/** String equality in time independent of where they differ (signatures are compared with it). */
function sameString(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return difference === 0
}

/**
 * Every value of the cookie `nameEq` (`"sid="`) in a Cookie header, in order, at most
 * {@link MAX_CANDIDATES}; `undefined` when there is none. A name only counts at the start of a
 * pair, so `xsid=` is not `sid=`. Surrounding quotes are removed.
 */
export function cookieValues(header: string, nameEq: string): string[] | undefined {
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
    if (found.length === MAX_CANDIDATES) return found
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

function checkKeys(keys: CookieIdentityOptions['keys']): Keygrip | undefined {
  if (keys === undefined) return undefined
  if (keys instanceof Keygrip) return keys
  if (!Array.isArray(keys) || keys.length === 0) throw new TypeError('CookieIdentity option "keys" must be a non-empty array of secret strings (or a Keygrip)')
  for (const key of keys as unknown[]) {
    if (typeof key !== 'string' || key.length < MIN_KEY_LENGTH) {
      throw new TypeError(`CookieIdentity option "keys" must hold secrets of at least ${MIN_KEY_LENGTH} characters each (HMAC-SHA256 wants 256-bit keys)`)
    }
  }
  return new Keygrip([...(keys as string[])], 'sha256')
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
