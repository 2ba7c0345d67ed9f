import { Agent, request } from 'node:http'

/**
 * Cookies of one client on one host: what a browser keeps from Set-Cookie lines and sends back.
 * An empty value or an expiry in the past deletes.
 */
export class CookieJar {
  readonly #cookies = new Map<string, string>()

  /** The Cookie request header, or `''` when the jar is empty. */
  header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  /** One cookie's value, if held. */
  get(name: string): string | undefined {
    return this.#cookies.get(name)
  }

  /** Keep what a response's Set-Cookie lines say. */
  absorb(lines: readonly string[] | string | number | undefined): void {
    if (lines === undefined || typeof lines === 'number') return
    for (const line of typeof lines === 'string' ? [lines] : lines) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expires = attributes.map((a) => /^\s*expires=(.*)$/i.exec(a)?.[1]).find((v) => v !== undefined)
      if (value === '' || (expires !== undefined && Date.parse(expires) <= Date.now())) this.#cookies.delete(name)
      else this.#cookies.set(name, value)
    }
  }
}

/** A response of {@link httpGet}. */
export interface HttpAnswer {
  readonly status: number
  readonly body: string
  readonly setCookie: readonly string[] | undefined
}

/** A GET on 127.0.0.1 with the given headers; rejects only on a network error or after `timeoutMs`. */
export function httpGet(agent: Agent, port: number, path: string, headers: Record<string, string> = {}, timeoutMs = 30_000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), setCookie: res.headers['set-cookie'] }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer to ${path} within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** What the fixture server answers on success. */
export interface ServerAnswer {
  readonly id?: string | null
  readonly oldId?: string
  readonly isNew?: boolean
  readonly data?: Record<string, unknown>
  readonly error?: string
}

/** One client of the fixture server (test/process/fixtures/session-server.ts), with its own cookie jar. */
export class SessionClient {
  readonly jar = new CookieJar()
  readonly #agent: Agent
  readonly #port: number

  constructor(agent: Agent, port: number) {
    this.#agent = agent
    this.#port = port
  }

  /** GET `path` with this client's cookies; keeps the cookies the answer sets. */
  async get(path: string): Promise<{ status: number; answer: ServerAnswer }> {
    const cookie = this.jar.header()
    const response = await httpGet(this.#agent, this.#port, path, cookie === '' ? {} : { cookie })
    this.jar.absorb(response.setCookie)
    let answer: ServerAnswer
    try {
      answer = JSON.parse(response.body) as ServerAnswer
    } catch {
      answer = { error: `not JSON: ${response.body.slice(0, 80)}` }
    }
    return { status: response.status, answer }
  }
}
