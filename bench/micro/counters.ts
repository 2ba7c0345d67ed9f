/**
 * Counters child: how many HMAC computations and `JSON.parse` calls request resolution costs.
 * `crypto.createHmac` (what Keygrip and cookie-signature call) and `JSON.parse` are wrapped
 * with counters before any library loads, then this library and express-session each resolve
 * `distinct` different session cookies `repeats` times over. Then each resolves one hostile
 * request ({@link HostileResult}).
 *
 * Arguments: distinct cookies, resolutions per cookie.
 */
import crypto from 'node:crypto'
import { reportSection } from '../lib/section.js'
import { SECRET } from '../http/servers/common.js'

/** The keys of the hostile request: the benches' secret and two older ones. */
const HOSTILE_KEYS = [SECRET, `older-${SECRET}`, `oldest-${SECRET}`]
const FORGED = 8

/** Calls counted while one library resolved the cookies. */
export interface CounterResult {
  /** Distinct cookie values resolved. */
  distinct: number
  /** Resolutions in all (each cookie `repeats` times). */
  resolutions: number
  /** `createHmac` calls keyed with the signing secret: one per signature computed. */
  signatures: number
  /** All `createHmac` calls (Keygrip's constant-time compare adds two per verification, with random keys). */
  hmacs: number
  /** `JSON.parse` calls. */
  jsonParses: number
  /** Of the resolutions, how many were cache hits (this library) or found the session (express-session). */
  hits: number
}

/** `createHmac` calls of one hostile request: eight forged ids and eight forged signatures, three keys. */
export interface HostileResult {
  /** Signing keys (secrets) each library was given. */
  keys: number
  /** Forged values in the Cookie header. */
  forgedValues: number
  /** Bytes of this library's Cookie header (express-session's is alike: eight `connect.sid=s:<id>.<signature>`). */
  headerBytes: number
  /** HMACs this library computed for the request. */
  library: number
  /** HMACs express-session (cookie-signature's `unsign`, once per secret) computed for the request. */
  expressSession: number
  /** CPU microseconds per hostile request here, over {@link HOSTILE_REPEATS} of them (HMACs counted meanwhile). */
  libraryCpuMicroseconds: number
}

/** Hostile requests timed. */
const HOSTILE_REPEATS = 200

const counts = { signatures: 0, hmacs: 0, jsonParses: 0 }
const createHmac = crypto.createHmac
crypto.createHmac = function countedCreateHmac(this: unknown, ...args: Parameters<typeof createHmac>) {
  counts.hmacs++
  if (args[1] === SECRET) counts.signatures++
  return createHmac.apply(this, args)
}
const parse = JSON.parse
JSON.parse = function countedParse(this: unknown, ...args: Parameters<typeof parse>) {
  counts.jsonParses++
  return parse.apply(this, args) as unknown
} as typeof parse

function reset(): void {
  counts.signatures = 0
  counts.hmacs = 0
  counts.jsonParses = 0
}

reportSection(async (): Promise<{ library: CounterResult; expressSession: CounterResult; hostile: HostileResult }> => {
  const distinct = Number(process.argv[2] ?? 100)
  const repeats = Number(process.argv[3] ?? 1000)
  // Loaded only now, so every module sees the counting functions.
  const { MemoryStorage } = await import('../../storages/memory.js')
  const { fakeRequest, FakeResponse } = await import('../lib/fake-http.js')
  const { expressSessionFixture, libraryManager, startLibrarySession } = await import('./fixtures.js')

  const manager = libraryManager(new MemoryStorage())
  const libraryCookies: string[] = []
  for (let i = 0; i < distinct; i++) libraryCookies.push(await startLibrarySession(manager))
  // Starting a session signs its cookie and nothing verified it yet: count from here.
  reset()
  let hits = 0
  for (let round = 0; round < repeats; round++) {
    for (const cookie of libraryCookies) {
      const session = manager.resolve(fakeRequest(cookie), new FakeResponse())
      if (!(session instanceof Promise) && !session.isNew) hits++
    }
  }
  const library: CounterResult = { distinct, resolutions: distinct * repeats, ...counts, hits }
  await manager.close()

  const express = await expressSessionFixture()
  const expressCookies: string[] = [express.cookie]
  while (expressCookies.length < distinct) expressCookies.push(await express.startSession())
  reset()
  hits = 0
  for (let round = 0; round < repeats; round++) {
    for (const cookie of expressCookies) {
      const req = fakeRequest(cookie)
      await express.run(req, new FakeResponse())
      if ((req as unknown as { session: { n?: number } }).session.n === 1) hits++
    }
  }
  const expressSession: CounterResult = { distinct, resolutions: distinct * repeats, ...counts, hits }

  // One hostile request each: well-formed forged ids, signature-shaped forged signatures.
  const { generateId } = await import('../../src/ids.js')
  const { CookieIdentity } = await import('../../identities/cookie.js')
  const { SessionManager } = await import('../../src/session-manager.js')
  const forgedSig = (): string => crypto.randomBytes(32).toString('base64url')
  const ids = Array.from({ length: FORGED }, () => generateId())
  const hostileCookie = [...ids.map((id) => `sid=${id}`), ...ids.map(() => `sid.sig=${forgedSig()}`)].join('; ')
  const hostileManager = new SessionManager({ storage: new MemoryStorage(), identities: [new CookieIdentity({ keys: HOSTILE_KEYS })] })
  reset()
  const hostileSession = await hostileManager.resolve(fakeRequest(hostileCookie), new FakeResponse())
  if (!hostileSession.isNew) throw new Error('the hostile request opened a session')
  const libraryHmacs = counts.hmacs
  // Forged values are never remembered: each repeat costs what the first did.
  const cpu = process.cpuUsage()
  for (let i = 0; i < HOSTILE_REPEATS; i++) await hostileManager.resolve(fakeRequest(hostileCookie), new FakeResponse())
  const cpuUsed = process.cpuUsage(cpu)
  await hostileManager.close()
  const hostileExpress = await expressSessionFixture(HOSTILE_KEYS)
  const expressCookie = ids.map((id) => `connect.sid=${encodeURIComponent(`s:${id}.${forgedSig()}`)}`).join('; ')
  reset()
  const expressReq = fakeRequest(expressCookie)
  await hostileExpress.run(expressReq, new FakeResponse())
  const hostile: HostileResult = {
    keys: HOSTILE_KEYS.length,
    forgedValues: FORGED,
    headerBytes: hostileCookie.length,
    library: libraryHmacs,
    expressSession: counts.hmacs,
    libraryCpuMicroseconds: (cpuUsed.user + cpuUsed.system) / HOSTILE_REPEATS,
  }
  return { library, expressSession, hostile }
})
