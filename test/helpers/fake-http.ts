import type { IncomingHttpHeaders } from 'node:http'
import { generateId } from '../../src/ids.js'
import type { SessionData, SessionRequest, SessionResponse, Storage } from '../../src/types.js'
import { CookieJar } from './session-client.js'

/** What a fake request is made of; every field is optional. */
export interface FakeRequestInit {
  /** The raw Cookie header, exactly as given (no escaping). */
  cookie?: string
  /** Other headers, lowercase names. */
  headers?: IncomingHttpHeaders
  /** Request target. Default `/`. */
  url?: string
  /** Host header (`undefined`: none). Default `localhost`. */
  host?: string | undefined
  /** Whether the request came over TLS (`socket.encrypted`). */
  encrypted?: boolean
}

/**
 * The one fake request of the tests: a request object for `manager.resolve(req, res)`, an
 * identity or a scope, without a socket or a server.
 */
export function fakeRequest(init: FakeRequestInit = {}): SessionRequest {
  const headers: IncomingHttpHeaders = { ...init.headers }
  if (!('host' in init)) headers.host = 'localhost'
  else if (init.host !== undefined) headers.host = init.host
  if (init.cookie !== undefined) headers.cookie = init.cookie
  return { headers, url: init.url ?? '/', socket: init.encrypted === true ? { encrypted: true } : null }
}

/** One cookie as a response set it. */
export interface SetCookie {
  readonly value: string
  /** Attribute names lowercase (`path`, `expires`, `httponly`…) to their values (`''` for flags). */
  readonly attributes: ReadonlyMap<string, string>
}

/** The one fake response of the tests: records the headers the identities set. */
export class FakeResponse implements SessionResponse {
  headersSent = false
  readonly headers = new Map<string, number | string | readonly string[]>()

  getHeader(name: string): number | string | readonly string[] | undefined {
    return this.headers.get(name.toLowerCase())
  }

  setHeader(name: string, value: number | string | readonly string[]): this {
    this.headers.set(name.toLowerCase(), value)
    return this
  }

  removeHeader(name: string): void {
    this.headers.delete(name.toLowerCase())
  }

  /** The Set-Cookie lines as sent. */
  get setCookies(): string[] {
    const raw = this.getHeader('set-cookie')
    return raw === undefined ? [] : Array.isArray(raw) ? [...(raw as string[])] : [String(raw)]
  }

  /** The Set-Cookie lines, parsed; the last one of a name wins, as in a browser. */
  cookies(): Map<string, SetCookie> {
    const cookies = new Map<string, SetCookie>()
    for (const line of this.setCookies) {
      const [pair = '', ...rest] = line.split(';')
      const eq = pair.indexOf('=')
      const attributes = new Map<string, string>()
      for (const attribute of rest) {
        const at = attribute.indexOf('=')
        if (at === -1) attributes.set(attribute.trim().toLowerCase(), '')
        else attributes.set(attribute.slice(0, at).trim().toLowerCase(), attribute.slice(at + 1).trim())
      }
      cookies.set(pair.slice(0, eq).trim(), { value: pair.slice(eq + 1).trim(), attributes })
    }
    return cookies
  }

  /** A Cookie request header carrying every cookie this response set that a browser would keep. */
  cookieHeader(): string {
    return [...this.cookies()]
      .filter(([, cookie]) => cookie.value !== '' && new Date(cookie.attributes.get('expires') ?? 8.64e15).getTime() > 0)
      .map(([name, cookie]) => `${name}=${cookie.value}`)
      .join('; ')
  }
}

/** Store a live session straight into `storage` (no manager involved) and return its id. */
export async function seedSession(storage: Storage, data: SessionData, id: string = generateId()): Promise<string> {
  const now = Date.now()
  await storage.set(id, { data, createdAt: now, expiresAt: now + 3_600_000 })
  return id
}

/** What a request gave its handler. */
export interface Visit<T> {
  readonly result: T
  readonly res: FakeResponse
}

/** Something that resolves sessions like a `SessionManager`. */
export interface SessionSource<S> {
  load(req: SessionRequest, res: FakeResponse): Promise<S>
}

/**
 * A client with a cookie jar: each request sends the cookies it holds and keeps what the
 * response sets (an empty value or a past expiry deletes), like a browser on one host.
 */
export class Browser {
  readonly #jar = new CookieJar()

  /** The Cookie header this browser sends. */
  get cookie(): string {
    return this.#jar.header()
  }

  /** The value of one cookie, if held. */
  value(name: string): string | undefined {
    return this.#jar.get(name)
  }

  /** Load the session of a request to `url`, run `handler`, then store the cookies the response set. */
  async request<S, T>(source: SessionSource<S>, handler: (session: S) => T | Promise<T>, url = '/'): Promise<Visit<T>> {
    const res = new FakeResponse()
    const cookie = this.cookie
    const session = await source.load(fakeRequest({ url, ...(cookie === '' ? {} : { cookie }) }), res)
    try {
      return { result: await handler(session), res }
    } finally {
      this.#jar.absorb(res.getHeader('set-cookie'))
    }
  }
}
