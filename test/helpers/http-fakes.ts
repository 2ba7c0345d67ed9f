import type { IncomingHttpHeaders } from 'node:http'
import type { SessionRequest, SessionResponse } from '../../src/types.js'

/** A request as identities see it, for tests that need no socket. */
export function fakeRequest(options: { cookie?: string; headers?: IncomingHttpHeaders; url?: string; host?: string; encrypted?: boolean } = {}): SessionRequest {
  const headers: IncomingHttpHeaders = { host: options.host ?? 'localhost', ...options.headers }
  if (options.cookie !== undefined) headers.cookie = options.cookie
  return { headers, url: options.url ?? '/', socket: { encrypted: options.encrypted === true } }
}

/** A response that records headers like node's ServerResponse. */
export class FakeResponse implements SessionResponse {
  readonly headers = new Map<string, number | string | readonly string[]>()
  headersSent = false

  getHeader(name: string): number | string | readonly string[] | undefined {
    return this.headers.get(name.toLowerCase())
  }

  setHeader(name: string, value: number | string | readonly string[]): this {
    if (this.headersSent) throw new Error('headers already sent')
    this.headers.set(name.toLowerCase(), value)
    return this
  }

  removeHeader(name: string): void {
    this.headers.delete(name.toLowerCase())
  }

  /** Set-Cookie lines sent so far. */
  get setCookies(): string[] {
    const value = this.headers.get('set-cookie')
    if (value === undefined) return []
    return Array.isArray(value) ? [...(value as string[])] : [String(value)]
  }

  /** The cookie header a browser would send back (name=value pairs of live cookies). */
  cookieHeader(): string {
    return this.setCookies
      .filter((line) => !/expires=Thu, 01 Jan 1970/i.test(line))
      .map((line) => line.split(';')[0]!)
      .join('; ')
  }
}
