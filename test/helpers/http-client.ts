import type { ExecutionContext } from 'ava'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** {@link listen} for one test: the server is closed by the test's teardown; resolves to its URL. */
export async function serveInTest(t: ExecutionContext, server: Server): Promise<string> {
  const started = await listen(server)
  t.teardown(started.close)
  return started.url
}

/** Start `server` on 127.0.0.1 on a free port; resolves to its base URL. Closed by `t.teardown(close)`. */
export async function listen(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** The cookies a browser keeps for one site: later Set-Cookie lines replace earlier ones; an expired one is dropped. */
export class CookieJar {
  readonly #cookies = new Map<string, string>()

  /** Take the Set-Cookie lines of a response. */
  store(setCookies: readonly string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expires = attributes.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('expires='))
      const expired = expires !== undefined && Date.parse(expires.slice('expires='.length)) <= Date.now()
      if (expired || value === '') this.#cookies.delete(name)
      else this.#cookies.set(name, value)
    }
  }

  /** The value of cookie `name`, if kept. */
  get(name: string): string | undefined {
    return this.#cookies.get(name)
  }

  /** The Cookie header to send, or `undefined` when the jar is empty. */
  header(): string | undefined {
    if (this.#cookies.size === 0) return undefined
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  /** A copy, to replay an old cookie later. */
  clone(): CookieJar {
    const copy = new CookieJar()
    for (const [name, value] of this.#cookies) copy.#cookies.set(name, value)
    return copy
  }
}

/** What {@link send} answers. */
export interface Answer {
  status: number
  body: string
  headers: Headers
  setCookies: string[]
  /** The body parsed as JSON. */
  json<T = Record<string, unknown>>(): T
}

/** One HTTP request with the jar's cookies; the jar takes the response's Set-Cookie lines. */
export async function send(url: string, options: { method?: string; jar?: CookieJar; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers }
  const cookie = options.jar?.header()
  if (cookie !== undefined) headers['cookie'] = cookie
  const response = await fetch(url, { method: options.method ?? 'GET', headers, redirect: 'manual' })
  const body = await response.text()
  const setCookies = response.headers.getSetCookie()
  options.jar?.store(setCookies)
  return { status: response.status, body, headers: response.headers, setCookies, json: <T>() => JSON.parse(body) as T }
}
