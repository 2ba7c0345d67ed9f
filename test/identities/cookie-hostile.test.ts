import test, { type ExecutionContext } from 'ava'
import Keygrip from 'keygrip'
import { CookieIdentity, type CookieIdentityOptions } from '../../identities/cookie.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import { MemoryStorage } from '../../storages/memory.js'
import { fakeRequest, FakeResponse, seedSession } from '../helpers/fake-http.js'
import { FaultStorage } from '../helpers/storage-double.js'

// Hostile Cookie headers against an unsigned and a signed cookie identity. Every case must end in
// either the real session (when the header really carries it) or a fresh one, never a throw, and
// a malformed or badly signed value must cost no storage read.

const KEYS = ['a'.repeat(16) + 'current-signing-key', 'b'.repeat(16) + 'previous-signing-key']
// An id whose base64url text has '-' and '_', so the standard-alphabet twin differs.
const ID = Buffer.alloc(32, 0xfb).toString('base64url')
const OTHER = generateId()

function sign(data: string, keys: readonly string[] = KEYS, algorithm = 'sha256'): string {
  return new Keygrip([...keys], algorithm).sign(data)
}

interface Setup {
  manager: SessionManager
  storage: FaultStorage
}

async function setup(options: CookieIdentityOptions = {}): Promise<Setup> {
  const storage = new FaultStorage(new MemoryStorage())
  await seedSession(storage.inner, { user: 'ada' }, ID)
  await seedSession(storage.inner, { user: 'eve' }, OTHER)
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false, ...options })] })
  return { manager, storage }
}

async function resolve(manager: SessionManager, cookie: string) {
  const res = new FakeResponse()
  const session = await manager.resolve(fakeRequest({ cookie }), res)
  return { session, res }
}

/** The header carries no usable id: a fresh session, an id that is not the attacker's, no storage read. */
async function expectFresh(t: ExecutionContext, setup: Setup, cookie: string, maxReads = 0): Promise<void> {
  const { session } = await resolve(setup.manager, cookie)
  t.true(session.isNew, 'a fresh session')
  t.is(session.get('user'), undefined)
  t.false(cookie.includes(session.id), 'the new id is not one the client chose')
  t.true(setup.storage.reads <= maxReads, `${setup.storage.reads} storage reads, expected at most ${maxReads}`)
}

/** The header carries the real session `id`. */
async function expectSession(t: ExecutionContext, setup: Setup, cookie: string, id = ID): Promise<void> {
  const { session } = await resolve(setup.manager, cookie)
  t.false(session.isNew)
  t.is(session.id, id)
  t.is(session.get('user'), id === ID ? 'ada' : 'eve')
}

const percentEncoded = [...ID].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('')
const canonicalLast = ID.at(-1)!
const nonCanonicalLast = String.fromCharCode(canonicalLast.charCodeAt(0) + 1)

/** Unsigned identity: headers that carry no valid id. */
const unsignedMalformed: ReadonlyArray<[string, string]> = [
  ['empty header', ''],
  ['only separators', ';;; ; ;'],
  ['empty value', 'sid='],
  ['name without =', 'sid'],
  ['whitespace value', 'sid=   '],
  ['id one character short', `sid=${ID.slice(0, -1)}`],
  ['id one character long', `sid=${ID}A`],
  ['id doubled', `sid=${ID}${ID}`],
  ['id with base64 padding', `sid=${ID}=`],
  ['id in the standard base64 alphabet', `sid=${ID.replaceAll('-', '+').replaceAll('_', '/')}`],
  ['id with a dot', `sid=${ID.slice(0, 20)}.${ID.slice(21)}`],
  ['id with a tilde', `sid=${ID.slice(0, 20)}~${ID.slice(21)}`],
  ['id with a space inside', `sid=${ID.slice(0, 20)} ${ID.slice(21)}`],
  ['id with a tab inside', `sid=${ID.slice(0, 20)}\t${ID.slice(21)}`],
  ['non-canonical last character (same bytes when decoded)', `sid=${ID.slice(0, -1)}${nonCanonicalLast}`],
  ['fully percent-encoded id', `sid=${percentEncoded}`],
  ['one percent-encoded character', `sid=%${ID.charCodeAt(0).toString(16)}${ID.slice(1)}`],
  ['percent-encoded name', `%73id=${ID}`],
  ['single quotes', `sid='${ID}'`],
  ['unbalanced double quote', `sid="${ID}`],
  ['backslash-escaped quotes', `sid=\\"${ID}\\"`],
  ['double double quotes', `sid=""${ID}""`],
  ['NUL inside', `sid=${ID.slice(0, 10)}\u0000${ID.slice(11)}`],
  ['NUL appended', `sid=${ID}\u0000`],
  ['DEL inside', `sid=${ID.slice(0, 10)}\u007f${ID.slice(11)}`],
  ['CR LF injection', `sid=${ID}\r\nSet-Cookie: sid=${OTHER}`],
  ['non-ASCII letter', `sid=${ID.slice(0, 5)}é${ID.slice(6)}`],
  [
    'Cyrillic homoglyph',
    `sid=${ID.replace(/a/g, '\u0430')
      .replace(/^([^\u0430]*)$/, '\u0430$1')
      .slice(0, 43)}`,
  ],
  ['full-width characters', `sid=${[...ID].map((c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)).join('')}`],
  ['emoji', `sid=${ID.slice(0, 41)}🍪`],
  ['lone surrogate', `sid=${ID.slice(0, 42)}\ud800`],
  ['id followed by a comma and another pair', `sid=${ID},x=1`],
  ['id followed by garbage', `sid=${ID}garbage`],
  ['name differs in case', `SID=${ID}`],
  ['longer name (xsid) ending in ours', `xsid=${ID}`],
  ['name with our name as prefix (sidx)', `sidx=${ID}`],
  ['name with a dash prefix', `-sid=${ID}`],
  ['our name inside another cookie value', `foo=sid=${ID}`],
  ['our name inside another quoted value', `foo="x sid=${ID}"`],
  ['space between name and =', `sid =${ID}`],
  ['the signature cookie only', `sid.sig=${sign(`sid=${ID}`)}`],
  ['twenty malformed values', Array.from({ length: 20 }, (_, i) => `sid=${ID.slice(i + 1)}`).join('; ')],
  ['comma-separated (RFC 2965 style) pairs', `a=1, sid=${ID}`],
  ['value is a JSON object', `sid={"id":"${ID}"}`],
  ['value is a JSON array', `sid=["${ID}"]`],
  ['URL-encoded whole pair', encodeURIComponent(`sid=${ID}`)],
]

/** Unsigned identity: headers that do carry the real id, in odd but legal shapes. */
const unsignedCarrying: ReadonlyArray<[string, string]> = [
  ['plain', `sid=${ID}`],
  ['RFC 6265 double quotes', `sid="${ID}"`],
  ['surrounding spaces', `  sid=${ID}  `],
  ['no space after the separator', `a=1;sid=${ID};b=2`],
  ['tab before the name', `a=1;\tsid=${ID}`],
  // String#trim also strips VT, NBSP and BOM: lenient, and harmless since the exact id is still required.
  ['a trailing vertical tab', `sid=${ID}\u000b`],
  ['a trailing no-break space', `sid=${ID}\u00a0`],
  ['a leading byte order mark in the value', `sid=\ufeff${ID}`],
  ['after xsid and sidx decoys', `xsid=${OTHER}; sidx=${OTHER}; sid=${ID}`],
  ['bad value first, good second', `sid=garbage; sid=${ID}`],
  ['good value first, bad second', `sid=${ID}; sid=garbage`],
  ['after a signature cookie', `sid.sig=whatever; sid=${ID}`],
  ['at the end of a 16 KB header', `pad=${'x'.repeat(16 * 1024)}; sid=${ID}`],
  ['after 3000 other cookies', `${Array.from({ length: 3000 }, (_, i) => `c${i}=v${i}`).join('; ')}; sid=${ID}`],
]

for (const [title, cookie] of unsignedMalformed) {
  test(`unsigned cookie, ${title}: fresh session, no storage read`, async (t) => {
    await expectFresh(t, await setup(), cookie)
  })
}

for (const [title, cookie] of unsignedCarrying) {
  test(`unsigned cookie, ${title}: the real session`, async (t) => {
    await expectSession(t, await setup(), cookie)
  })
}

test('unsigned cookie, a well-formed id that is not stored: one read, then a fresh session with another id (no fixation)', async (t) => {
  const s = await setup()
  const planted = generateId()
  const { session, res } = await resolve(s.manager, `sid=${planted}`)
  t.true(session.isNew)
  t.is(s.storage.reads, 1)
  await session.set('user', 'victim')
  t.not(session.id, planted)
  t.is(res.cookies().get('sid')?.value, session.id)
  t.is(await s.storage.inner.get(planted), undefined)
})

test('unsigned cookie, two stored sessions under one name: the first one sent wins', async (t) => {
  await expectSession(t, await setup(), `sid=${OTHER}; sid=${ID}`, OTHER)
  await expectSession(t, await setup(), `sid=${ID}; sid=${OTHER}`, ID)
})

test('unsigned cookie, an unknown id before the real one: both read, the real one wins', async (t) => {
  const s = await setup()
  await expectSession(t, s, `sid=${generateId()}; sid=${ID}`)
  t.is(s.storage.reads, 2)
})

test('unsigned cookie, 5000 malformed values of our name before the real one: bounded work, no read', async (t) => {
  // Only the first few values of one name are considered, so a flood costs nothing and reads nothing.
  await expectFresh(t, await setup(), `${'sid=x; '.repeat(5000)}sid=${ID}`)
})

test('unsigned cookie, 1000 well-formed unknown ids: at most 8 storage reads', async (t) => {
  const cookie = Array.from({ length: 1000 }, () => `sid=${generateId()}`).join('; ')
  await expectFresh(t, await setup(), cookie, 8)
})

test('unsigned cookie, a 64 KB value: fresh session, no read', async (t) => {
  await expectFresh(t, await setup(), `sid=${'A'.repeat(64 * 1024)}`)
})

// ---- signed cookies ----

const signed = { keys: KEYS }
const goodSig = sign(`sid=${ID}`)

const signedBad: ReadonlyArray<[string, string]> = [
  ['signature missing', `sid=${ID}`],
  ['signature empty', `sid=${ID}; sid.sig=`],
  ['signature stripped of its last character', `sid=${ID}; sid.sig=${goodSig.slice(0, -1)}`],
  ['signature with one character changed', `sid=${ID}; sid.sig=${goodSig[0] === 'A' ? 'B' : 'A'}${goodSig.slice(1)}`],
  ['signature in upper case', `sid=${ID}; sid.sig=${goodSig.toUpperCase() === goodSig ? goodSig.toLowerCase() : goodSig.toUpperCase()}`],
  ['signature from another cookie name', `sid=${ID}; sid.sig=${sign(`other=${ID}`)}`],
  ['signature of another id', `sid=${ID}; sid.sig=${sign(`sid=${OTHER}`)}`],
  ['signature of the id without the name', `sid=${ID}; sid.sig=${sign(ID)}`],
  ['signature made with SHA-1 (downgrade)', `sid=${ID}; sid.sig=${sign(`sid=${ID}`, KEYS, 'sha1')}`],
  ['signature made with an unknown key', `sid=${ID}; sid.sig=${sign(`sid=${ID}`, ['z'.repeat(40)])}`],
  [
    'signature in the standard base64 alphabet with padding',
    `sid=${ID}; sid.sig=${new Keygrip(KEYS, 'sha256').sign(`sid=${ID}`).replace(/-/g, '+').replace(/_/g, '/')}=`,
  ],
  ['signature under a longer name (xsid.sig)', `sid=${ID}; xsid.sig=${goodSig}`],
  ['signature under sid.sigx', `sid=${ID}; sid.sigx=${goodSig}`],
  ['signature and id swapped', `sid=${goodSig}; sid.sig=${ID}`],
  ['valid signature, id with a non-canonical last character', `sid=${ID.slice(0, -1)}${nonCanonicalLast}; sid.sig=${goodSig}`],
  ['signature of the quoted value', `sid="${ID}"; sid.sig=${sign(`sid="${ID}"`)}`],
  ['signature sent as the id of xsid', `xsid=${ID}; sid.sig=${goodSig}`],
  ['signature inside another cookie value', `sid=${ID}; foo=sid.sig=${goodSig}`],
  ['20 wrong signatures', `sid=${ID}; ${Array.from({ length: 20 }, (_, i) => `sid.sig=${sign(`sid=${ID}${i}`)}`).join('; ')}`],
  // Values and signatures pair up in the order sent (the i-th value with the i-th signature), so
  // a lone value or signature before the real pair shifts the pairing and nothing verifies.
  ['a wrong signature first, the right one second (pairs shifted)', `sid=${ID}; sid.sig=${sign(`sid=${OTHER}`)}; sid.sig=${goodSig}`],
  ['a forged id without signature first, the signed one second (pairs shifted)', `sid=${OTHER}; sid=${ID}; sid.sig=${goodSig}`],
  ['the signature of the second value paired with the first', `sid=${OTHER}; sid=${ID}; sid.sig=${goodSig}; sid.sig=${sign(`sid=${OTHER}`)}`],
  ['the real pair after four junk pairs (beyond the cap)', `${'sid=x; sid.sig=y; '.repeat(4)}sid=${ID}; sid.sig=${goodSig}`],
]

for (const [title, cookie] of signedBad) {
  test(`signed cookie, ${title}: fresh session, no storage read`, async (t) => {
    await expectFresh(t, await setup(signed), cookie)
  })
}

const signedGood: ReadonlyArray<[string, string]> = [
  ['id then signature', `sid=${ID}; sid.sig=${goodSig}`],
  ['signature then id', `sid.sig=${goodSig}; sid=${ID}`],
  ['signed with the previous key', `sid=${ID}; sid.sig=${sign(`sid=${ID}`, KEYS.slice(1))}`],
  ['a forged pair first, the signed one second', `sid=${OTHER}; sid.sig=${sign(`sid=${ID}`, ['z'.repeat(40)])}; sid=${ID}; sid.sig=${goodSig}`],
  [
    'all values first, then all signatures, the real one second',
    `sid=${OTHER}; sid=${ID}; sid.sig=${sign(`sid=${OTHER}`, ['z'.repeat(40)])}; sid.sig=${goodSig}`,
  ],
  ['the real pair after three junk pairs (within the cap)', `${'sid=x; sid.sig=y; '.repeat(3)}sid=${ID}; sid.sig=${goodSig}`],
  ['quoted id and signature', `sid="${ID}"; sid.sig="${goodSig}"`],
]

for (const [title, cookie] of signedGood) {
  test(`signed cookie, ${title}: the real session`, async (t) => {
    await expectSession(t, await setup(signed), cookie)
  })
}

test('signed cookie, a session known to storage but sent unsigned costs no read (a stolen id needs its signature)', async (t) => {
  const s = await setup(signed)
  await expectFresh(t, s, `sid=${OTHER}`)
})

test('signed cookie, an old-key signature is re-signed with the newest key', async (t) => {
  const s = await setup(signed)
  const { session, res } = await resolve(s.manager, `sid=${ID}; sid.sig=${sign(`sid=${ID}`, KEYS.slice(1))}`)
  t.is(session.id, ID)
  t.is(res.cookies().get('sid.sig')?.value, goodSig)
})

test('signed cookie, a signature of another cookie cannot be replayed for ours', async (t) => {
  // A second identity on the same keys signs `asid=<id>`: its signature must not open `sid`.
  const s = await setup(signed)
  const res = new FakeResponse()
  new CookieIdentity({ name: 'asid', keys: KEYS, secure: false }).set(fakeRequest(), res, ID, Date.now() + 60_000)
  const stolen = res.cookies().get('asid.sig')!.value
  await expectFresh(t, s, `sid=${ID}; sid.sig=${stolen}`)
})

test('signed cookie, 3000 signature cookies and 3000 ids: bounded work, no read', async (t) => {
  const cookie = `${Array.from({ length: 3000 }, () => `sid=${generateId()}; sid.sig=${goodSig}`).join('; ')}; sid=${ID}`
  await expectFresh(t, await setup(signed), cookie)
})

// ---- the version part of `<id>.<version>` ----

/** Version parts that make the whole value invalid: not a canonical decimal safe non-negative integer. */
const malformedVersions: ReadonlyArray<[string, string]> = [
  ['empty version', ''],
  ['leading zero', '01'],
  ['zeros only', '00'],
  ['minus sign', '-1'],
  ['negative zero', '-0'],
  ['plus sign', '+1'],
  ['leading space', ' 1'],
  ['space inside', '1 2'],
  ['tab inside', '1\t2'],
  ['exponent', '1e3'],
  ['fraction', '1.5'],
  ['two dots', '.1'],
  ['hexadecimal', '0x1f'],
  ['binary', '0b1'],
  ['numeric separator', '1_000'],
  ['NaN', 'NaN'],
  ['Infinity', 'Infinity'],
  ['letters', 'abc'],
  ['MAX_SAFE_INTEGER + 1', '9007199254740992'],
  ['sixteen nines', '9999999999999999'],
  ['seventeen digits', '12345678901234567'],
  ['a thousand digits', '1'.repeat(1000)],
  ['full-width digit', '\uff11'],
  ['Arabic-Indic digit', '\u0663'],
  ['superscript one', '\u00b9'],
  ['NUL after the digits', '1\u0000'],
  ['percent-encoded digit', '%31'],
  ['quoted version', '"1"'],
]

for (const [title, version] of malformedVersions) {
  test(`unsigned cookie, version part: ${title}: fresh session, no storage read`, async (t) => {
    await expectFresh(t, await setup(), `sid=${ID}.${version}`)
  })
  test(`signed cookie, version part: ${title}, signed as a whole: fresh session, no storage read`, async (t) => {
    await expectFresh(t, await setup(signed), `sid=${ID}.${version}; sid.sig=${sign(`sid=${ID}.${version}`)}`)
  })
}

const versionedSig = sign(`sid=${ID}.5`)

const versionForgeries: ReadonlyArray<[string, string]> = [
  ['version raised, signature of the old version', `sid=${ID}.6; sid.sig=${versionedSig}`],
  ['version lowered, signature of the higher version', `sid=${ID}.4; sid.sig=${versionedSig}`],
  ['version extended by a digit', `sid=${ID}.50; sid.sig=${versionedSig}`],
  ['version added to a bare id, signature of the bare id', `sid=${ID}.5; sid.sig=${goodSig}`],
  ['version stripped, signature of the versioned value', `sid=${ID}; sid.sig=${versionedSig}`],
  ['signature of the version alone', `sid=${ID}.5; sid.sig=${sign('sid=5')}`],
  ['signature of another id at that version', `sid=${ID}.5; sid.sig=${sign(`sid=${OTHER}.5`)}`],
  ['signature of the versioned value without the name', `sid=${ID}.5; sid.sig=${sign(`${ID}.5`)}`],
  ['signature with the dot left out', `sid=${ID}.5; sid.sig=${sign(`sid=${ID}5`)}`],
  ['version with an unknown key', `sid=${ID}.5; sid.sig=${sign(`sid=${ID}.5`, ['z'.repeat(40)])}`],
  ['forged version on another id', `sid=${OTHER}.5; sid.sig=${versionedSig}`],
  ['a forged version first, the genuine one second with one signature (pairs shifted)', `sid=${ID}.6; sid=${ID}.5; sid.sig=${versionedSig}`],
]

for (const [title, cookie] of versionForgeries) {
  test(`signed cookie, ${title}: fresh session, no storage read`, async (t) => {
    await expectFresh(t, await setup(signed), cookie)
  })
}

const versionedGood: ReadonlyArray<[string, string, CookieIdentityOptions]> = [
  ['unsigned, with a version', `sid=${ID}.5`, {}],
  ['unsigned, version 0', `sid=${ID}.0`, {}],
  ['unsigned, version MAX_SAFE_INTEGER', `sid=${ID}.9007199254740991`, {}],
  ['unsigned, quoted with a version', `sid="${ID}.5"`, {}],
  ['unsigned, a malformed version before the good one', `sid=${ID}.05; sid=${ID}.5`, {}],
  ['signed, with a version', `sid=${ID}.5; sid.sig=${versionedSig}`, signed],
  ['signed, a forged version first, the genuine one second', `sid=${ID}.6; sid=${ID}.5; sid.sig=${versionedSig}; sid.sig=${versionedSig}`, signed],
  ['signed, the bare id and the versioned value, each signed', `sid=${ID}; sid=${ID}.5; sid.sig=${goodSig}; sid.sig=${versionedSig}`, signed],
  ['signed with the previous key, with a version', `sid=${ID}.5; sid.sig=${sign(`sid=${ID}.5`, KEYS.slice(1))}`, signed],
]

for (const [title, cookie, options] of versionedGood) {
  test(`versioned cookie, ${title}: the real session`, async (t) => {
    await expectSession(t, await setup(options), cookie)
  })
}

test('signed cookie, an old-key signature of a versioned value is re-signed with the newest key, keeping the version', async (t) => {
  const s = await setup(signed)
  const { session, res } = await resolve(s.manager, `sid=${ID}.5; sid.sig=${sign(`sid=${ID}.5`, KEYS.slice(1))}`)
  t.is(session.id, ID)
  t.is(res.cookies().get('sid')?.value, `${ID}.5`)
  t.is(res.cookies().get('sid.sig')?.value, versionedSig)
})

test('signed cookie, 3000 versioned values with the signature of one of them: bounded work, no read', async (t) => {
  const cookie = `${Array.from({ length: 3000 }, (_, i) => `sid=${ID}.${i + 6}`).join('; ')}; sid.sig=${versionedSig}; sid=${ID}.5`
  await expectFresh(t, await setup(signed), cookie)
})
