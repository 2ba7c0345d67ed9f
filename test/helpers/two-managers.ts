import type { ExecutionContext } from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionManager } from '../../src/session-manager.js'
import type { SessionRequest, SessionResponse, Storage } from '../../src/types.js'

/** A response that only records headers, enough for identities to issue a cookie. */
export class RecordingResponse implements SessionResponse {
  readonly headersSent = false
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

  /** `name=value` of the first Set-Cookie header, as a browser would send it back. */
  cookie(): string {
    const header = this.getHeader('set-cookie')
    const first = Array.isArray(header) ? (header as readonly string[])[0] : header
    if (typeof first !== 'string') throw new Error('the response set no cookie')
    return first.split(';')[0]!
  }
}

/** A plain-HTTP request on localhost carrying `cookie`, if any. */
export function requestWith(cookie?: string): SessionRequest {
  return { headers: cookie === undefined ? { host: 'localhost' } : { host: 'localhost', cookie }, url: '/', socket: {} }
}

/**
 * Two managers (two processes, in effect: separate storages and caches) serve the same session
 * through the same cookie, and each writes different keys at the same time. A storage that
 * rewrote the whole record from one manager's cache would lose the other's keys; per-key
 * writes keep both.
 */
export async function twoManagersKeepTheirWrites(t: ExecutionContext, open: () => Promise<Storage>, keysEach = 10): Promise<void> {
  const first = new SessionManager({ storage: await open(), identities: [new CookieIdentity()] })
  const second = new SessionManager({ storage: await open(), identities: [new CookieIdentity()] })
  try {
    const created = new RecordingResponse()
    const session = await first.load(requestWith(), created)
    await session.set('seed', 'from first')
    const cookie = created.cookie()

    const inFirst = await first.load(requestWith(cookie), new RecordingResponse())
    const inSecond = await second.load(requestWith(cookie), new RecordingResponse())
    t.is(inSecond.id, inFirst.id)
    t.is(inSecond.get('seed'), 'from first', 'the second manager loaded the session from storage')
    t.is(second.stats().loads, 1)

    const writes: Array<Promise<void>> = []
    for (let i = 0; i < keysEach; i++) writes.push(inFirst.set(`first${i}`, i), inSecond.set(`second${i}`, { i, by: 'second' }))
    await Promise.all(writes)

    const stored = await first.storage.get(inFirst.id)
    const expected: Record<string, unknown> = { seed: 'from first' }
    for (let i = 0; i < keysEach; i++) {
      expected[`first${i}`] = i
      expected[`second${i}`] = { i, by: 'second' }
    }
    t.deepEqual(stored?.data, expected)
    t.deepEqual((await second.storage.get(inFirst.id))?.data, expected)
  } finally {
    await Promise.all([first.close(), second.close()])
  }
}
