/**
 * Request and response objects without sockets, for in-process benches: just enough of
 * node:http for this library's identities, express-session and its `on-headers`.
 */
import type { SessionResponse } from '../../src/types.js'

/** A request as the benches build it. */
export interface FakeRequest {
  headers: { cookie?: string; host: string }
  url: string
  originalUrl: string
  method: string
  socket: object
}

const SOCKET = Object.freeze({ encrypted: false })

/** A GET request for `url` carrying `cookie` (or none). */
export function fakeRequest(cookie: string | undefined, url = '/read'): FakeRequest {
  const headers: FakeRequest['headers'] = { host: 'localhost' }
  if (cookie !== undefined) headers.cookie = cookie
  return { headers, url, originalUrl: url, method: 'GET', socket: SOCKET }
}

/** A response that keeps its headers in memory; `end()` sends the head as node:http would. */
export class FakeResponse implements SessionResponse {
  statusCode = 200
  headersSent = false
  readonly #headers = new Map<string, number | string | readonly string[]>()

  getHeader(name: string): number | string | readonly string[] | undefined {
    return this.#headers.get(name.toLowerCase())
  }

  setHeader(name: string, value: number | string | readonly string[]): this {
    this.#headers.set(name.toLowerCase(), value)
    return this
  }

  removeHeader(name: string): void {
    this.#headers.delete(name.toLowerCase())
  }

  writeHead(statusCode: number): this {
    this.statusCode = statusCode
    this.headersSent = true
    return this
  }

  /** node:http's internal "head already written" marker, which express-session reads. */
  get _header(): string | null {
    return this.headersSent ? 'sent' : null
  }

  /** node:http's internal "write the head now", which express-session calls. */
  _implicitHeader(): void {
    this.writeHead(this.statusCode)
  }

  write(): boolean {
    if (!this.headersSent) this.writeHead(this.statusCode)
    return true
  }

  end(): this {
    // Through `this.writeHead`, so a wrapper installed by on-headers (express-session) runs.
    if (!this.headersSent) this.writeHead(this.statusCode)
    return this
  }

  /** The Cookie header a browser would send back after this response's Set-Cookie lines. */
  cookie(): string {
    const lines = this.getHeader('set-cookie')
    const list = lines === undefined ? [] : Array.isArray(lines) ? lines : [String(lines)]
    return list.map((line: string) => line.split(';', 1)[0]!.trim()).join('; ')
  }
}
