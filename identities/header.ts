import { preventCaching, TOKEN_CACHE_CONTROL } from '../src/cache-control.js'
import { isValidId } from '../src/ids.js'
import { knownOptionsCheck, optionNames } from '../src/kit/options.js'
import { createScope, type Scope } from '../src/scope.js'
import type { Identity, SessionRequest, SessionResponse } from '../src/types.js'

/** Options of {@link HeaderIdentity}. */
export interface HeaderIdentityOptions {
  /** Request and response header carrying the token. Default `'x-session-token'`. */
  header?: string
  /** Hostname or `*.example.com` pattern (or several) this identity serves; default every host. */
  host?: string | readonly string[]
  /** Path prefix this identity serves, matched on segment boundaries. Default `'/'`. */
  path?: string
  /** Read the host from `X-Forwarded-Host`. Default `false`. */
  trustProxy?: boolean
}

const KNOWN = optionNames<HeaderIdentityOptions>({ header: true, host: true, path: true, trustProxy: true })
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/
const RESERVED = new Set(['cookie', 'set-cookie', 'host', 'authorization', 'content-length', 'content-type', 'transfer-encoding', 'connection'])

/**
 * Carries the session id in a request header, for API clients without cookies. The token is
 * sent back in the same response header when a session is created, renewed or touched (its
 * deadline moved), and as an empty value when it is destroyed. Exactly one value is accepted: a request that repeats the header
 * (joined with commas) carries no candidate.
 *
 * A response that carries the token (or its removal) is made `Cache-Control: no-store`, so no
 * cache between the server and the client keeps the credential: a Cache-Control the application
 * set before keeps its directives and gains `no-store` (a `public` is dropped); one that already
 * says `no-store` is left alone. One set after the session's write replaces it.
 *
 * The token carries no session version (there is no `versionOf`, and `set` ignores one): an API
 * client keeps the token it was given and does not take a new one after every write, so a
 * version sent back with each response would not come back. Header clients get bounded
 * staleness instead: a cached copy older than `trustCacheFor` is checked against the storage
 * before it is served.
 *
 * @example
 * ```ts
 * const api = new HeaderIdentity({ header: 'x-session-token', path: '/api' })
 * manager.setIdentityManager(api)
 * // client: fetch('/api/me', { headers: { 'x-session-token': token } })
 * ```
 */
export class HeaderIdentity implements Identity {
  readonly name: string
  /** The header name, lowercase. */
  readonly header: string
  readonly #scope: Scope

  constructor(options: HeaderIdentityOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('HeaderIdentity options must be an object')
    knownOptionsCheck(options, 'HeaderIdentity', KNOWN)
    const header = options.header ?? 'x-session-token'
    if (typeof header !== 'string' || !HEADER_NAME.test(header.toLowerCase()) || RESERVED.has(header.toLowerCase())) {
      throw new TypeError('HeaderIdentity option "header" must be a header name token that is not a standard header (e.g. "x-session-token")')
    }
    this.header = header.toLowerCase()
    this.name = `header:${this.header}`
    this.#scope = createScope({ host: options.host, path: options.path, trustProxy: options.trustProxy }, 'HeaderIdentity option')
  }

  /** Whether the request's host and path are in this identity's scope. */
  matches(req: SessionRequest): boolean {
    return this.#scope.matches(req)
  }

  /** The one well-formed token of the request, if it carries exactly one. */
  get(req: SessionRequest): readonly string[] {
    const value = req.headers[this.header]
    if (typeof value !== 'string') return NONE
    const token = value.trim()
    return isValidId(token) ? [token] : NONE
  }

  /** Send the token in the response header, `Cache-Control: no-store`. A session version, if given, is ignored (see the class notes). */
  set(_req: SessionRequest, res: SessionResponse, id: string): void {
    res.setHeader(this.header, id)
    preventCaching(res, TOKEN_CACHE_CONTROL)
  }

  /**
   * Take back the token {@link HeaderIdentity.set} put on `res`, when it is `id`'s (an id the
   * storage never kept): the response then carries no token header (or an empty one, which
   * tells the client to forget its token, on a response that cannot remove a header). Nothing
   * changes once the headers are sent.
   */
  withdraw(_req: SessionRequest, res: SessionResponse, id: string): void {
    if (res.headersSent || res.getHeader(this.header) !== id) return
    if (res.removeHeader !== undefined) res.removeHeader(this.header)
    else res.setHeader(this.header, '')
  }

  /** Send an empty token, `Cache-Control: no-store`: the client must forget its token. */
  remove(_req: SessionRequest, res: SessionResponse): void {
    res.setHeader(this.header, '')
    preventCaching(res, TOKEN_CACHE_CONTROL)
  }
}

const NONE: readonly string[] = Object.freeze([])
