import test, { type ExecutionContext } from 'ava'
import type { IncomingHttpHeaders } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import { HeaderIdentity } from '../../identities/header.js'
import { generateId } from '../../src/ids.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Identity } from '../../src/types.js'
import { MemoryStorage } from '../../storages/memory.js'
import { fakeRequest, FakeResponse, seedSession } from '../helpers/fake-http.js'
import { FaultStorage } from '../helpers/storage-double.js'

// Hostile session-token headers. A token is accepted only when the request carries exactly one
// well-formed value; anything else is no candidate and costs no storage read.

const ID = generateId()
const OTHER = generateId()
const HEADER = 'x-session-token'

async function setup(identities: Identity[] = [new HeaderIdentity({ header: HEADER })]) {
  const storage = new FaultStorage(new MemoryStorage())
  await seedSession(storage.inner, { user: 'ada' }, ID)
  await seedSession(storage.inner, { user: 'eve' }, OTHER)
  return { storage, manager: new SessionManager({ storage, identities }) }
}

async function resolveHeaders(manager: SessionManager, headers: IncomingHttpHeaders, cookie?: string) {
  const res = new FakeResponse()
  const session = await manager.resolve(fakeRequest({ headers, ...(cookie === undefined ? {} : { cookie }) }), res)
  return { session, res }
}

async function expectFresh(t: ExecutionContext, headers: IncomingHttpHeaders): Promise<void> {
  const { storage, manager } = await setup()
  const { session } = await resolveHeaders(manager, headers)
  t.true(session.isNew)
  t.is(session.get('user'), undefined)
  t.is(storage.reads, 0, 'no storage read for a malformed token')
}

const malformed: ReadonlyArray<[string, IncomingHttpHeaders]> = [
  ['empty', { [HEADER]: '' }],
  ['only spaces', { [HEADER]: '     ' }],
  ['duplicates joined with a comma', { [HEADER]: `${ID}, ${ID}` }],
  ['duplicates joined without a space', { [HEADER]: `${ID},${ID}` }],
  ['a bad and a good value joined', { [HEADER]: `garbage, ${ID}` }],
  ['a good and a bad value joined', { [HEADER]: `${ID}, garbage` }],
  ['two different sessions joined', { [HEADER]: `${OTHER}, ${ID}` }],
  ['an array of values (a framework that keeps duplicates)', { [HEADER]: [ID, ID] }],
  ['a one-element array', { [HEADER]: [ID] }],
  ['whitespace inside', { [HEADER]: `${ID.slice(0, 20)} ${ID.slice(20)}` }],
  ['a Bearer prefix', { [HEADER]: `Bearer ${ID}` }],
  ['double quotes', { [HEADER]: `"${ID}"` }],
  ['one character short', { [HEADER]: ID.slice(0, -1) }],
  ['one character long', { [HEADER]: `${ID}A` }],
  ['base64 padding', { [HEADER]: `${ID}=` }],
  ['standard base64 alphabet', { [HEADER]: ID.replace(/[-_]/g, (c) => (c === '-' ? '+' : '/')).replace(/^[^+/]*$/, (s) => `+${s.slice(1)}`) }],
  ['percent-encoded', { [HEADER]: encodeURIComponent(ID).replace(/^./, (c) => `%${c.charCodeAt(0).toString(16)}`) }],
  ['control character', { [HEADER]: `${ID.slice(0, 42)}\u0001` }],
  ['non-ASCII', { [HEADER]: `${ID.slice(0, 42)}é` }],
  ['oversized (10 KB)', { [HEADER]: 'A'.repeat(10 * 1024) }],
  ['oversized (1 MB)', { [HEADER]: 'A'.repeat(1024 * 1024) }],
  ['a number', { [HEADER]: 42 as unknown as string }],
  ['the header name in upper case on a raw object (node lowercases real headers)', { 'X-Session-Token': ID }],
  ['a similar header name', { 'x-session-tokens': ID }],
  ['a cookie-style pair', { [HEADER]: `${HEADER}=${ID}` }],
  ['JSON', { [HEADER]: JSON.stringify({ token: ID }) }],
]

for (const [title, headers] of malformed) {
  test(`header token, ${title}: fresh session, no storage read`, async (t) => {
    await expectFresh(t, headers)
  })
}

const carrying: ReadonlyArray<[string, IncomingHttpHeaders]> = [
  ['plain', { [HEADER]: ID }],
  ['surrounding spaces and tabs', { [HEADER]: ` \t${ID}\t ` }],
]

for (const [title, headers] of carrying) {
  test(`header token, ${title}: the real session`, async (t) => {
    const { manager, storage } = await setup()
    const { session } = await resolveHeaders(manager, headers)
    t.is(session.id, ID)
    t.is(session.get('user'), 'ada')
    t.is(storage.reads, 1)
  })
}

test('header token, a well-formed unknown token: a fresh session issued under a new token', async (t) => {
  const { manager } = await setup()
  const planted = generateId()
  const { session, res } = await resolveHeaders(manager, { [HEADER]: planted })
  t.true(session.isNew)
  t.is(res.getHeader(HEADER), undefined, 'nothing is issued before data is written')
  await session.set('user', 'victim')
  t.not(session.id, planted)
  t.is(res.getHeader(HEADER), session.id)
})

// A token and a cookie naming different sessions: identities are asked in registration order and
// the first live session wins; the other is not even read.
test('token and cookie naming different sessions: the identity registered first wins (cookie first)', async (t) => {
  const { manager, storage } = await setup([new CookieIdentity({ secure: false }), new HeaderIdentity({ header: HEADER })])
  const { session } = await resolveHeaders(manager, { [HEADER]: OTHER }, `sid=${ID}`)
  t.is(session.id, ID)
  t.is(session.identity, 'cookie:sid')
  t.is(storage.reads, 1)
})

test('token and cookie naming different sessions: the identity registered first wins (header first)', async (t) => {
  const { manager, storage } = await setup([new HeaderIdentity({ header: HEADER }), new CookieIdentity({ secure: false })])
  const { session } = await resolveHeaders(manager, { [HEADER]: OTHER }, `sid=${ID}`)
  t.is(session.id, OTHER)
  t.is(session.identity, `header:${HEADER}`)
  t.is(storage.reads, 1)
})

test('token and cookie: when the first identity names a dead session, the second one is used', async (t) => {
  const { manager } = await setup([new HeaderIdentity({ header: HEADER }), new CookieIdentity({ secure: false })])
  const { session } = await resolveHeaders(manager, { [HEADER]: generateId() }, `sid=${ID}`)
  t.is(session.id, ID)
  t.is(session.identity, 'cookie:sid')
})

test('token and cookie: a malformed token does not hide a valid cookie', async (t) => {
  const { manager, storage } = await setup([new HeaderIdentity({ header: HEADER }), new CookieIdentity({ secure: false })])
  const { session } = await resolveHeaders(manager, { [HEADER]: `${OTHER}, ${ID}` }, `sid=${ID}`)
  t.is(session.id, ID)
  t.is(storage.reads, 1)
})

test('header token, destroy answers through the header with an empty token', async (t) => {
  const { manager } = await setup()
  const { session, res } = await resolveHeaders(manager, { [HEADER]: ID })
  await session.destroy()
  t.is(res.getHeader(HEADER), '')
  const again = await resolveHeaders(manager, { [HEADER]: ID })
  t.true(again.session.isNew, 'a destroyed token opens nothing')
})
