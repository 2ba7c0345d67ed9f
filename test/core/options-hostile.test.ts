import test from 'ava'
import { CookieIdentity, type CookieIdentityOptions } from '../../identities/cookie.js'
import { HeaderIdentity, type HeaderIdentityOptions } from '../../identities/header.js'
import { SealedCookieIdentity, type SealedCookieIdentityOptions } from '../../identities/sealed-cookie.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import { MemoryStorage } from '../../storages/memory.js'
import { fakeRequest, FakeResponse } from '../helpers/fake-http.js'

// Bad configuration fails at startup with a TypeError that names the option, never later on a
// request. Each case: [title, options, the option name the message must contain].

type Case<O> = readonly [string, O, string]

const cookieCases: ReadonlyArray<Case<unknown>> = [
  ['no keys in the array', { keys: [] }, '"keys"'],
  ['an empty signing key', { keys: [''] }, '"keys"'],
  ['a short signing key', { keys: ['secret'] }, '"keys"'],
  ['a 31-character signing key', { keys: ['k'.repeat(31)] }, '"keys"'],
  ['a good key followed by a short one', { keys: ['k'.repeat(40), 'short'] }, '"keys"'],
  ['a key that is a number', { keys: [1e40] }, '"keys"'],
  ['a null key', { keys: [null] }, '"keys"'],
  ['keys given as one string', { keys: 'k'.repeat(40) }, '"keys"'],
  ['keys given as an object', { keys: { 0: 'k'.repeat(40) } }, '"keys"'],
  ['sameSite none without secure', { sameSite: 'none' }, '"sameSite"'],
  ['sameSite none with secure false', { sameSite: 'none', secure: false }, '"sameSite"'],
  ['sameSite in another case', { sameSite: 'Strict' }, '"sameSite"'],
  ['sameSite true', { sameSite: true }, '"sameSite"'],
  ['partitioned without secure', { partitioned: true }, '"partitioned"'],
  ['partitioned with secure auto', { partitioned: true, secure: 'auto' }, '"partitioned"'],
  ['a __Host- name without secure', { name: '__Host-sid' }, '"secure"'],
  ['a __Host- name with a domain', { name: '__Host-sid', secure: true, domain: 'example.com' }, '"domain"'],
  ['a __Host- name with a path', { name: '__Host-sid', secure: true, path: '/admin' }, '"path"'],
  ['a __Secure- name without secure', { name: '__Secure-sid' }, '"secure"'],
  ['a __Secure- name with secure false', { name: '__Secure-sid', secure: false }, '"secure"'],
  ['a domain that does not cover the host', { host: 'app.example.com', domain: 'evil.com' }, '"domain"'],
  ['a domain that is a suffix but not a parent', { host: 'app.example.com', domain: 'ample.com' }, '"domain"'],
  ['a domain with a semicolon', { domain: 'example.com; secure' }, '"domain"'],
  ['a domain with a space', { domain: 'exa mple.com' }, '"domain"'],
  ['a domain with a scheme', { domain: 'https://example.com' }, '"domain"'],
  ['an empty name', { name: '' }, '"name"'],
  ['a name with a space', { name: 'my sid' }, '"name"'],
  ['a name with =', { name: 'a=b' }, '"name"'],
  ['a name with ;', { name: 'a;b' }, '"name"'],
  ['a name with CR LF', { name: 'sid\r\nSet-Cookie: x' }, '"name"'],
  ['a non-ASCII name', { name: 'séance' }, '"name"'],
  ['a name that is a number', { name: 42 }, '"name"'],
  ['a path without a leading slash', { path: 'admin' }, '"path"'],
  ['a path with ;', { path: '/admin; Domain=evil.com' }, '"path"'],
  ['a path with a space', { path: '/ad min' }, '"path"'],
  ['a path with a newline', { path: '/admin\n' }, '"path"'],
  ['a path with a dot-dot segment (a request path never holds one)', { path: '/public/../admin' }, '"path"'],
  ['a path with a dot segment', { path: '/./admin' }, '"path"'],
  ['a path ending in a dot-dot segment', { path: '/admin/..' }, '"path"'],
  ['a path with a query (never part of a request path)', { path: '/admin?x=1' }, '"path"'],
  ['a path with a fragment', { path: '/admin#x' }, '"path"'],
  ['a path that is a number', { path: 7 }, '"path"'],
  ['an empty host', { host: '' }, '"host"'],
  ['an empty host list', { host: [] }, '"host"'],
  ['a host with a scheme', { host: 'https://example.com' }, '"host"'],
  ['a host with a port', { host: 'example.com:443' }, '"host"'],
  ['a host with a path', { host: 'example.com/admin' }, '"host"'],
  ['a double wildcard host', { host: '*.*.example.com' }, '"host"'],
  ['a wildcard in the middle', { host: 'app.*.com' }, '"host"'],
  ['a host list with a number', { host: ['example.com', 42] }, '"host"'],
  ['secure as a string', { secure: 'yes' }, '"secure"'],
  ['httpOnly as a string', { httpOnly: 'true' }, '"httpOnly"'],
  ['persistent as a number', { persistent: 1 }, '"persistent"'],
  ['trustProxy as a string', { trustProxy: 'true' }, '"trustProxy"'],
  ['an unknown priority', { priority: 'urgent' }, '"priority"'],
  ['a zero verifiedCacheSize', { verifiedCacheSize: 0 }, '"verifiedCacheSize"'],
  ['a fractional verifiedCacheSize', { verifiedCacheSize: 1.5 }, '"verifiedCacheSize"'],
]

for (const [title, options, option] of cookieCases) {
  test(`CookieIdentity with ${title}: TypeError naming ${option}`, (t) => {
    const error = t.throws(() => new CookieIdentity(options as CookieIdentityOptions), { instanceOf: TypeError })
    t.true(error.message.includes(option), error.message)
  })
}

test('CookieIdentity with null options: TypeError', (t) => {
  t.throws(() => new CookieIdentity(null as unknown as CookieIdentityOptions), { instanceOf: TypeError, message: /options/ })
})

test('CookieIdentity with a trailing slash in path sets the Path its scope serves', (t) => {
  const identity = new CookieIdentity({ path: '/admin/', secure: false })
  const res = new FakeResponse()
  identity.set(fakeRequest({ url: '/admin' }), res, 'x', Date.now() + 60_000)
  t.true(identity.matches(fakeRequest({ url: '/admin' })))
  t.is(res.cookies().get('sid')?.attributes.get('path'), '/admin', 'Path=/admin/ would never be sent back to /admin')
})

const headerCases: ReadonlyArray<Case<unknown>> = [
  ['the Cookie header', { header: 'cookie' }, '"header"'],
  ['Set-Cookie', { header: 'Set-Cookie' }, '"header"'],
  ['Authorization', { header: 'authorization' }, '"header"'],
  ['Host', { header: 'host' }, '"header"'],
  ['an empty name', { header: '' }, '"header"'],
  ['a name with a space', { header: 'x token' }, '"header"'],
  ['a name with a colon', { header: 'x-token:' }, '"header"'],
  ['a name with CR LF', { header: 'x-token\r\nx-evil' }, '"header"'],
  ['a number', { header: 42 }, '"header"'],
  ['a path with a dot-dot segment', { path: '/api/../admin' }, '"path"'],
  ['a relative path', { path: 'api' }, '"path"'],
  ['an invalid host', { host: 'exa mple.com' }, '"host"'],
]

for (const [title, options, option] of headerCases) {
  test(`HeaderIdentity with ${title}: TypeError naming ${option}`, (t) => {
    const error = t.throws(() => new HeaderIdentity(options as HeaderIdentityOptions), { instanceOf: TypeError })
    t.true(error.message.includes(option), error.message)
  })
}

const managerCases: ReadonlyArray<Case<unknown>> = [
  ['cacheLimit 0', { cacheLimit: 0 }, '"cacheLimit"'],
  ['a negative cacheLimit', { cacheLimit: -1 }, '"cacheLimit"'],
  ['a fractional cacheLimit', { cacheLimit: 1.5 }, '"cacheLimit"'],
  ['cacheLimit NaN', { cacheLimit: NaN }, '"cacheLimit"'],
  ['cacheLimit Infinity', { cacheLimit: Infinity }, '"cacheLimit"'],
  ['cacheLimit as a string', { cacheLimit: '100' }, '"cacheLimit"'],
  ['cacheMaxAge 0', { cacheMaxAge: 0 }, '"cacheMaxAge"'],
  ['maxAge 0', { maxAge: 0 }, '"maxAge"'],
  ['a negative maxAge', { maxAge: -1 }, '"maxAge"'],
  ['maxAge NaN', { maxAge: NaN }, '"maxAge"'],
  ['maxAge Infinity', { maxAge: Infinity }, '"maxAge"'],
  ['maxAge as a string', { maxAge: '3600' }, '"maxAge"'],
  ['a negative absoluteMaxAge', { absoluteMaxAge: -5 }, '"absoluteMaxAge"'],
  ['touchAfter equal to maxAge', { maxAge: 60, touchAfter: 60 }, '"touchAfter"'],
  ['touchAfter over maxAge', { maxAge: 60, touchAfter: 120 }, '"touchAfter"'],
  ['a negative touchAfter', { touchAfter: -1 }, '"touchAfter"'],
  ['maxSessionBytes 10', { maxSessionBytes: 10 }, '"maxSessionBytes"'],
  ['a negative writeRetries', { writeRetries: -1 }, '"writeRetries"'],
  ['a negative retryDelay', { retryDelay: -1 }, '"retryDelay"'],
  ['maxPendingWrites 0', { maxPendingWrites: 0 }, '"maxPendingWrites"'],
  ['maxBatchSize 0', { maxBatchSize: 0 }, '"maxBatchSize"'],
  ['writeConcurrency 0', { writeConcurrency: 0 }, '"writeConcurrency"'],
  ['batching as a string', { batching: 'yes' }, '"batching"'],
  ['a storage without methods', { storage: {} }, '"storage"'],
  [
    'a storage missing delete',
    { storage: { ...Object.fromEntries(['get', 'set', 'update', 'remove', 'touch', 'close'].map((m) => [m, () => undefined])) } },
    '"storage"',
  ],
  ['a storage that is a string', { storage: 'memory' }, '"storage"'],
  ['identities that are not an array', { identities: new CookieIdentity() }, '"identities"'],
  ['an identity without methods', { identities: [{}] }, '"identities[0]"'],
  ['a null identity', { identities: [new CookieIdentity(), null] }, '"identities[1]"'],
  ['an empty identities array', { identities: [] }, '"identities" is an empty array'],
]

for (const [title, options, option] of managerCases) {
  test(`SessionManager with ${title}: TypeError naming ${option}`, (t) => {
    const error = t.throws(() => new SessionManager({ storage: new MemoryStorage(), ...(options as SessionManagerOptions) }), { instanceOf: TypeError })
    t.true(error.message.includes(option), error.message)
  })
}

test('SessionManager with null options: TypeError', (t) => {
  t.throws(() => new SessionManager(null as unknown as SessionManagerOptions), { instanceOf: TypeError })
})

// A key read from an unset environment variable is undefined or '': the message says the key is
// missing, not that it is too short; a short key still hears that it is too short.
const missingKeyCases: ReadonlyArray<readonly [string, unknown[], number]> = [
  ['undefined', [undefined], 0],
  ['an empty string', [''], 0],
  ['a good key then undefined', ['k'.repeat(40), undefined], 1],
]

for (const [title, keys, index] of missingKeyCases) {
  test(`CookieIdentity with keys [${title}]: says no key is given at index ${index}`, (t) => {
    const error = t.throws(() => new CookieIdentity({ keys } as unknown as CookieIdentityOptions), { instanceOf: TypeError })
    t.true(error.message.includes(`no key at index ${index}`), error.message)
    t.true(error.message.includes('is the environment variable'), error.message)
    t.false(error.message.includes('at least'), error.message)
  })
  test(`SealedCookieIdentity with keys [${title}]: says no key is given at index ${index}`, (t) => {
    const error = t.throws(() => new SealedCookieIdentity({ keys } as unknown as SealedCookieIdentityOptions), { instanceOf: TypeError })
    t.true(error.message.includes(`no key at index ${index}`), error.message)
    t.true(error.message.includes('is the environment variable'), error.message)
  })
}

test('CookieIdentity and SealedCookieIdentity with a short key: still say it is too short', (t) => {
  const cookie = t.throws(() => new CookieIdentity({ keys: ['short'] }), { instanceOf: TypeError })
  t.true(cookie.message.includes('at least 32 characters'), cookie.message)
  const sealed = t.throws(() => new SealedCookieIdentity({ keys: ['short'] }), { instanceOf: TypeError })
  t.true(sealed.message.includes('at least 32 characters'), sealed.message)
})
