import test, { type ExecutionContext } from 'ava'
import crypto from 'node:crypto'
import { CookieIdentity } from '../../identities/cookie.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Storage } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { startApp, type App } from '../helpers/app-server.js'
import { hmacsUntilSettled } from '../helpers/hmac-count.js'

// HMAC work per request is bounded by a constant. Before, a signed cookie identity tried every
// value against every signature with every key, and Keygrip's constant-time compare costs two
// more HMACs per try: eight forged ids and eight forged signatures in an ~800-byte Cookie header
// cost 8 × 8 × 3 × 3 = 576 HMACs per request with three keys. Now each of the first four values
// is checked against its own signature (the one sent in the same position), one HMAC per key,
// newest first: at most 4 × 3 = 12.
//
// The servers run in this process, so wrapping `crypto.createHmac` counts what they compute.
// Serial: a counted request must be the only thing running.

const NEW_KEY = 'n'.repeat(20) + '-newest-signing-key'
const MID_KEY = 'm'.repeat(20) + '-middle-signing-key'
const OLD_KEY = 'o'.repeat(20) + '-oldest-signing-key'
const KEYS = [NEW_KEY, MID_KEY, OLD_KEY]
/** Values of one cookie name verified per request. */
const CAP = 4

/** One process of the app on `storage` with a signed cookie: `/login` writes a user, `/whoami` reads it. */
function app(t: ExecutionContext, storage: Storage, keys: readonly string[] = KEYS): Promise<App> {
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ keys, secure: false })] })
  return startApp(t, manager, {
    '/login': async (session) => {
      await session.set('user', 'ada')
      return { id: session.id }
    },
    '/whoami': (session) => ({ id: session.id, isNew: session.isNew, user: session.get('user') ?? null }),
  })
}

/** A signature-shaped forgery: 43 characters of base64url, as an HMAC-SHA256 is written. */
function forgedSig(): string {
  return crypto.randomBytes(32).toString('base64url')
}

function sign(value: string, key = NEW_KEY): string {
  return crypto.createHmac('sha256', key).update(`sid=${value}`).digest('base64url')
}

/** The value of cookie `name` in Set-Cookie lines, if set. */
function setCookieValue(lines: readonly string[], name: string): string | undefined {
  const line = lines.find((l) => l.startsWith(`${name}=`))
  return line?.slice(name.length + 1).split(';')[0]
}

/** Eight well-formed forged ids and eight signature-shaped forgeries, every value before every signature. */
const hostileHeader = (): string =>
  [...Array.from({ length: 8 }, () => `sid=${generateId()}`), ...Array.from({ length: 8 }, () => `sid.sig=${forgedSig()}`)].join('; ')

test.serial('eight forged ids times eight forged signatures with three keys cost at most cap × keys HMACs, and no session', async (t) => {
  const server = await app(t, new MemoryStorage())
  const cookie = hostileHeader()
  t.true(cookie.length > 750 && cookie.length < 900, `an ~800-byte header (${cookie.length})`)
  const { answer, hmacs } = await hmacsUntilSettled(() => server.client().get('/whoami', cookie))
  t.is(answer.status, 200)
  t.true(answer.body['isNew'])
  t.is(answer.body['user'], null)
  t.true(hmacs <= CAP * KEYS.length, `${hmacs} HMACs, at most ${CAP * KEYS.length}`)
  t.true(hmacs > 0, 'the first values were checked')
  // Interleaved pairs, as a browser sends them, cost the same.
  const pairs = Array.from({ length: 8 }, () => `sid=${generateId()}; sid.sig=${forgedSig()}`).join('; ')
  const interleaved = await hmacsUntilSettled(() => server.client().get('/whoami', pairs))
  t.true(interleaved.answer.body['isNew'])
  t.true(interleaved.hmacs <= CAP * KEYS.length, `${interleaved.hmacs} HMACs`)
})

test.serial('a legitimate cookie resolves: no HMAC where it was signed, one in another process', async (t) => {
  const storage = new MemoryStorage()
  const first = await app(t, storage)
  const browser = first.client()
  const id = (await browser.get('/login')).body['id'] as string
  const here = await hmacsUntilSettled(() => browser.get('/whoami'))
  t.is(here.answer.body['user'], 'ada')
  t.is(here.answer.body['id'], id)
  t.is(here.hmacs, 0, 'this process signed the value: remembered')

  const second = await app(t, storage)
  const elsewhere = await hmacsUntilSettled(() => second.client().get('/whoami', browser.jar.header()))
  t.is(elsewhere.answer.body['user'], 'ada')
  t.is(elsewhere.hmacs, 1, 'one HMAC with the newest key')
  const again = await hmacsUntilSettled(() => second.client().get('/whoami', browser.jar.header()))
  t.is(again.answer.body['user'], 'ada')
  t.is(again.hmacs, 0, 'verified once per process')
})

test.serial('a cookie signed with the oldest key still resolves and is re-signed with the newest', async (t) => {
  const storage = new MemoryStorage()
  const before = await app(t, storage, [OLD_KEY])
  const browser = before.client()
  const id = (await browser.get('/login')).body['id'] as string
  t.is(browser.jar.get('sid.sig'), sign(id, OLD_KEY))

  // The keys rotate: a process with the new key list takes over.
  const rotated = await app(t, storage)
  const { answer, hmacs } = await hmacsUntilSettled(() => rotated.client().get('/whoami', browser.jar.header()))
  t.is(answer.body['user'], 'ada')
  t.is(answer.body['id'], id)
  t.is(setCookieValue(answer.setCookie, 'sid'), id)
  t.is(setCookieValue(answer.setCookie, 'sid.sig'), sign(id), 're-signed with the newest key')
  t.is(hmacs, KEYS.length + 1, 'one HMAC per key tried, newest first, and one to re-sign')

  const resigned = `sid=${id}; sid.sig=${sign(id)}`
  const next = await hmacsUntilSettled(() => rotated.client().get('/whoami', resigned))
  t.is(next.answer.body['user'], 'ada')
  t.deepEqual(next.answer.setCookie, [], 'nothing to re-sign')
  t.is(next.hmacs, 0, 'the re-signed value is remembered')
})

test.serial('ordering attacks: the real pair after junk pairs resolves within the cap, beyond it or out of step fails cleanly', async (t) => {
  const storage = new MemoryStorage()
  const server = await app(t, storage)
  const browser = server.client()
  const id = (await browser.get('/login')).body['id'] as string
  const real = `sid=${id}; sid.sig=${sign(id)}`
  const junkPairs = (n: number): string => Array.from({ length: n }, () => `sid=${generateId()}; sid.sig=${forgedSig()}`).join('; ')
  const bound = CAP * KEYS.length

  const cases: ReadonlyArray<[string, string, boolean]> = [
    ['the real pair first, junk after', `${real}; ${junkPairs(7)}`, true],
    ['one junk pair before the real pair', `${junkPairs(1)}; ${real}`, true],
    [`${CAP - 1} junk pairs before the real pair`, `${junkPairs(CAP - 1)}; ${real}`, true],
    [`${CAP} junk pairs before the real pair (beyond the cap)`, `${junkPairs(CAP)}; ${real}`, false],
    ['a lone forged id before the real pair (pairs out of step)', `sid=${generateId()}; ${real}`, false],
    ['a lone forged signature before the real pair (pairs out of step)', `sid.sig=${forgedSig()}; ${real}`, false],
    [
      'the real signature moved after seven forged ones',
      `sid=${id}; ${Array.from({ length: 7 }, () => `sid.sig=${forgedSig()}`).join('; ')}; sid.sig=${sign(id)}`,
      false,
    ],
  ]
  for (const [title, cookie, resolves] of cases) {
    const { answer, hmacs } = await hmacsUntilSettled(() => server.client().get('/whoami', cookie))
    t.is(answer.status, 200, title)
    t.is(answer.body['user'], resolves ? 'ada' : null, title)
    t.is(answer.body['id'] === id, resolves, title)
    t.true(hmacs <= bound, `${title}: ${hmacs} HMACs, at most ${bound}`)
  }
})
