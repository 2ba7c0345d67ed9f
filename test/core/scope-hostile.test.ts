import test from 'ava'
import type { IncomingHttpHeaders } from 'node:http'
import { CookieIdentity } from '../../identities/cookie.js'
import { HeaderIdentity } from '../../identities/header.js'
import { SessionManager } from '../../src/session-manager.js'
import { MemoryStorage } from '../../storages/memory.js'
import { fakeRequest, FakeResponse, seedSession } from '../helpers/fake-http.js'
import { FaultStorage } from '../helpers/storage-double.js'

// Which identity serves a request is decided by its host and path. An attacker controls both
// (Host header, request target): the admin cookie must never be read outside the admin scope,
// whatever spelling of host or path is sent.

const admin = new CookieIdentity({ name: 'asid', host: 'app.example.com', path: '/admin', secure: false })
const wildcard = new CookieIdentity({ name: 'wsid', host: '*.example.com', secure: false })
const ipv6 = new HeaderIdentity({ host: '[::1]' })
const proxied = new CookieIdentity({ name: 'psid', host: 'app.example.com', trustProxy: true, secure: false })

function request(host: string | undefined, url = '/', headers: IncomingHttpHeaders = {}) {
  return fakeRequest({ host, url, headers })
}

const adminMatches: ReadonlyArray<[string, string | undefined, string]> = [
  ['the exact host and path', 'app.example.com', '/admin'],
  ['a trailing slash', 'app.example.com', '/admin/'],
  ['a sub-path', 'app.example.com', '/admin/users/7'],
  ['a query string', 'app.example.com', '/admin?x=/public'],
  ['a fragment', 'app.example.com', '/admin#frag'],
  ['an upper-case host', 'APP.Example.COM', '/admin'],
  ['a trailing dot on the host', 'app.example.com.', '/admin'],
  ['a port', 'app.example.com:8443', '/admin'],
  ['a trailing dot and a port', 'app.example.com.:80', '/admin'],
  ['surrounding spaces in Host', '  app.example.com  ', '/admin'],
  ['a dot-dot segment leading into the scope', 'app.example.com', '/public/../admin'],
  ['a dot segment', 'app.example.com', '/./admin/./x'],
  ['dot-dot above the root', 'app.example.com', '/../../admin'],
  ['an absolute-form target', 'app.example.com', 'http://app.example.com/admin/x'],
  ['an absolute-form target with a query', 'app.example.com', 'https://app.example.com/admin?x'],
]

const adminRefuses: ReadonlyArray<[string, string | undefined, string]> = [
  ['a longer path (/adminx)', 'app.example.com', '/adminx'],
  ['a shorter path (/admi)', 'app.example.com', '/admi'],
  ['the root', 'app.example.com', '/'],
  ['another case in the path (/Admin)', 'app.example.com', '/Admin'],
  ['a percent-encoded path (/%61dmin)', 'app.example.com', '/%61dmin'],
  ['an encoded slash (/admin%2Fx is one segment, not below /admin)', 'app.example.com', '/admin%2Fx'],
  ['an encoded dot-dot out of the scope', 'app.example.com', '/admin%2F..%2Fpublic'],
  ['a dot-dot segment leading out of the scope', 'app.example.com', '/admin/../public'],
  ['a doubled leading slash', 'app.example.com', '//admin'],
  ['a backslash instead of a slash (browsers send a slash)', 'app.example.com', '/admin\\x'],
  ['an empty target', 'app.example.com', ''],
  ['an asterisk-form target', 'app.example.com', '*'],
  ['an absolute-form target without a path', 'app.example.com', 'http://app.example.com'],
  ['another host', 'evil.com', '/admin'],
  ['a subdomain of the host', 'x.app.example.com', '/admin'],
  ['the host as a subdomain of another', 'app.example.com.evil.com', '/admin'],
  ['the host with userinfo', 'evil@app.example.com', '/admin'],
  ['the host followed by junk', 'app.example.com evil', '/admin'],
  ['the host without its first letter', 'pp.example.com', '/admin'],
  ['a host with two trailing dots', 'app.example.com..', '/admin'],
  ['an empty Host header', '', '/admin'],
  ['no Host header at all', undefined, '/admin'],
  ['a 300-character Host header', `${'a'.repeat(284)}.example.com`, '/admin'],
  ['an IPv6 literal', '[::1]', '/admin'],
  ['an unterminated IPv6 literal', '[::1', '/admin'],
]

for (const [title, host, url] of adminMatches) {
  test(`scope /admin on app.example.com, ${title}: in scope`, (t) => {
    t.true(admin.matches(request(host, url)))
  })
}

for (const [title, host, url] of adminRefuses) {
  test(`scope /admin on app.example.com, ${title}: out of scope`, (t) => {
    t.false(admin.matches(request(host, url)))
  })
}

test('X-Forwarded-Host is ignored unless trustProxy is set', (t) => {
  t.false(admin.matches(request('evil.com', '/admin', { 'x-forwarded-host': 'app.example.com' })))
  t.true(admin.matches(request('app.example.com', '/admin', { 'x-forwarded-host': 'evil.com' })))
})

test('with trustProxy, the first X-Forwarded-Host value decides', (t) => {
  t.true(proxied.matches(request('internal:8080', '/', { 'x-forwarded-host': 'app.example.com, evil.com' })))
  t.false(proxied.matches(request('app.example.com', '/', { 'x-forwarded-host': 'evil.com, app.example.com' })))
})

const wildcardCases: ReadonlyArray<[string, string, boolean]> = [
  ['a subdomain', 'a.example.com', true],
  ['a deep subdomain', 'a.b.example.com', true],
  ['an upper-case subdomain', 'A.EXAMPLE.COM', true],
  ['the apex', 'example.com', false],
  ['a suffix that is not a subdomain', 'evilexample.com', false],
  ['the pattern followed by another domain', 'a.example.com.evil.com', false],
  ['a dot only', '.example.com', false],
]

for (const [title, host, expected] of wildcardCases) {
  test(`scope *.example.com, ${title} (${host}): ${expected ? 'in' : 'out of'} scope`, (t) => {
    t.is(wildcard.matches(request(host)), expected)
  })
}

test('an IPv6 host pattern matches the literal with or without a port', (t) => {
  t.true(ipv6.matches(request('[::1]:3000')))
  t.true(ipv6.matches(request('[::1]')))
  t.false(ipv6.matches(request('[::2]')))
})

// Through the manager: the admin session is only ever read inside the admin scope.
async function setup() {
  const storage = new FaultStorage(new MemoryStorage())
  const adminId = await seedSession(storage.inner, { role: 'admin' })
  const siteId = await seedSession(storage.inner, { role: 'visitor' })
  const site = new CookieIdentity({ name: 'sid', host: 'app.example.com', secure: false })
  const manager = new SessionManager({ storage, identities: [admin, site] })
  return { storage, manager, cookie: `asid=${adminId}; sid=${siteId}` }
}

for (const [title, host, url] of adminRefuses.filter(([, host]) => host === 'app.example.com')) {
  test(`manager on ${url || '(empty)'} (${title}): the admin session is not read`, async (t) => {
    const { manager, cookie, storage } = await setup()
    const session = await manager.load(fakeRequest({ host, url, cookie }), new FakeResponse())
    t.is(session.get('role'), 'visitor')
    t.is(session.identity, 'cookie:sid')
    t.is(storage.reads, 1)
  })
}

for (const [title, host, url] of adminMatches) {
  test(`manager on ${host} ${url} (${title}): the admin session`, async (t) => {
    const { manager, cookie } = await setup()
    const session = await manager.load(fakeRequest({ host, url, cookie }), new FakeResponse())
    t.is(session.get('role'), 'admin')
  })
}

test('manager on another host: no identity matches, nothing is read, and a write is refused with SESSION_NO_IDENTITY', async (t) => {
  const { manager, cookie, storage } = await setup()
  const session = await manager.load(fakeRequest({ host: 'evil.com', url: '/admin', cookie }), new FakeResponse())
  t.true(session.isNew)
  t.is(storage.reads, 0)
  const error = await t.throwsAsync(session.set('role', 'admin'))
  t.is((error as { code?: string }).code, 'SESSION_NO_IDENTITY')
  t.is(storage.writes, 0)
})

test('a new session on /adminx is issued by the site cookie with Path=/, never the admin cookie', async (t) => {
  const { manager } = await setup()
  const res = new FakeResponse()
  const session = await manager.load(fakeRequest({ host: 'app.example.com', url: '/adminx' }), res)
  await session.set('x', 1)
  const cookies = res.cookies()
  t.false(cookies.has('asid'))
  t.is(cookies.get('sid')?.attributes.get('path'), '/')
})
