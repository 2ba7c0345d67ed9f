/** In-process fixtures of the micro benches: this library and express-session, each with a live session. */
import session from 'express-session'
import Keygrip from 'keygrip'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { Storage } from '../../src/types.js'
import { SECRET } from '../http/servers/common.js'
import { fakeRequest, FakeResponse, type FakeRequest } from '../lib/fake-http.js'

/** The cookie name of this library's identity in the benches. */
export const COOKIE_NAME = 'sid'

/** A manager with one signed CookieIdentity, as the HTTP bench server has. */
export function libraryManager(storage: Storage, options: SessionManagerOptions & { verifiedCacheSize?: number } = {}): SessionManager {
  const { verifiedCacheSize, ...rest } = options
  const identity = new CookieIdentity({ name: COOKIE_NAME, keys: [SECRET], ...(verifiedCacheSize === undefined ? {} : { verifiedCacheSize }) })
  return new SessionManager({ ...rest, storage, identities: [identity] })
}

/** Start a session through the public API (a first write) and return the Cookie header the client would send. */
export async function startLibrarySession(manager: SessionManager): Promise<string> {
  const res = new FakeResponse()
  const fresh = await manager.load(fakeRequest(undefined, '/write'), res)
  await fresh.set('n', 1)
  return res.cookie()
}

const keygrip = new Keygrip([SECRET], 'sha256')

/** The signed Cookie header of session `id`, exactly as CookieIdentity (through `cookies`) issues it. */
export function signedCookie(id: string): string {
  return `${COOKIE_NAME}=${id}; ${COOKIE_NAME}.sig=${keygrip.sign(`${COOKIE_NAME}=${id}`)}`
}

/** express-session's middleware, as a function of (req, res) that settles when it calls `next`. */
export type ExpressSessionRun = (req: FakeRequest, res: FakeResponse) => Promise<void>

/** express-session on one MemoryStore, with a way to start more sessions. */
export interface ExpressSessionFixture {
  run: ExpressSessionRun
  store: session.MemoryStore
  /** The cookie of the first session. */
  cookie: string
  /** Start one more session (a first request that writes); resolves to its cookie. */
  startSession(): Promise<string>
}

/** express-session on a MemoryStore, configured as in the HTTP bench (or with `secrets`, newest first), with one stored session. */
export async function expressSessionFixture(secrets: string[] = [SECRET]): Promise<ExpressSessionFixture> {
  const store = new session.MemoryStore()
  const middleware = session({ secret: secrets, resave: false, saveUninitialized: false, store })
  const run: ExpressSessionRun = (req, res) =>
    new Promise((resolve, reject) => {
      middleware(req as never, res as never, (err?: unknown) => (err === undefined ? resolve() : reject(err instanceof Error ? err : new Error(String(err)))))
    })
  const startSession = async (): Promise<string> => {
    // A first request writes the session; its response carries the cookie once it ends.
    const req = fakeRequest(undefined, '/write')
    const res = new FakeResponse()
    await run(req, res)
    ;(req as unknown as { session: { n: number } }).session.n = 1
    res.end()
    await new Promise((resolve) => setImmediate(resolve))
    const cookie = res.cookie()
    if (!cookie.startsWith('connect.sid=')) throw new Error(`express-session issued no cookie (got "${cookie}")`)
    return cookie
  }
  return { run, store, cookie: await startSession(), startSession }
}
