import { CookieIdentity } from '../../identities/cookie.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import type { SessionData } from '../../src/types.js'
import { FakeResponse, fakeRequest } from './fake-http.js'

/** A 32-character test signing key. */
export const TEST_KEY = 'test-signing-key-0123456789abcdef'

/** A manager with a signed cookie identity and a controllable clock. */
export function testManager(options: SessionManagerOptions = {}): SessionManager & { clock: { now: number } } {
  const clock = { now: Date.now() }
  const manager = new SessionManager({
    identities: [new CookieIdentity({ keys: [TEST_KEY] })],
    now: () => clock.now,
    ...options,
  })
  return Object.assign(manager, { clock })
}

/** One simulated request: resolves the session for `cookie` and returns it with the response. */
export async function visit<D extends object = SessionData>(
  manager: SessionManager<D>,
  cookie?: string,
  extra: Parameters<typeof fakeRequest>[0] = {},
): Promise<{ session: Session<D>; res: FakeResponse; cookie: string }> {
  const res = new FakeResponse()
  const request = cookie === undefined ? fakeRequest(extra) : fakeRequest({ ...extra, cookie })
  const session = await manager.load(request, res)
  return {
    session,
    res,
    /** The cookie header a browser would send next: what this response issued, else what it sent. */
    get cookie() {
      const issued = res.cookieHeader()
      return issued.length > 0 ? issued : (cookie ?? '')
    },
  }
}
