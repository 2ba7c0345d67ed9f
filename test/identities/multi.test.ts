import test from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { HeaderIdentity } from '../../identities/header.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'
import { TEST_KEY, testManager } from '../helpers/manager.js'

test('several identities: each request lands on the identity of its host and path', async (t) => {
  const shop = new CookieIdentity({ name: 'shop_sid', host: 'shop.example.com', path: '/', keys: [TEST_KEY] })
  const admin = new CookieIdentity({ name: 'admin_sid', host: 'admin.example.com', path: '/admin', secure: true, keys: [TEST_KEY] })
  const api = new HeaderIdentity({ header: 'x-session-token', path: '/api' })
  const manager = testManager({ identities: [shop, admin, api] })

  const create = async (host: string, url: string, encrypted = false) => {
    const res = new FakeResponse()
    const session = await manager.load(fakeRequest({ host, url, encrypted }), res)
    await session.set('where', `${host}${url}`)
    return { session, res }
  }
  const onShop = await create('Shop.Example.com:8443', '/cart')
  t.is(onShop.session.identity, 'cookie:shop_sid')
  t.regex(onShop.res.setCookies[0]!, /^shop_sid=.*; path=\/;/)
  const onAdmin = await create('admin.example.com', '/admin/users', true)
  t.is(onAdmin.session.identity, 'cookie:admin_sid')
  t.regex(onAdmin.res.setCookies[0]!, /^admin_sid=.*; path=\/admin;.*secure/)
  const onApi = await create('api.example.com', '/api/items')
  t.is(onApi.session.identity, 'header:x-session-token')
  t.is(onApi.res.getHeader('x-session-token'), onApi.session.id)
  t.deepEqual(onApi.res.setCookies, [])

  // Outside every scope: no identity, so a write cannot create a session.
  const nowhere = await manager.load(fakeRequest({ host: 'admin.example.com', url: '/adminx' }), new FakeResponse())
  t.is(nowhere.identity, undefined)
  await t.throwsAsync(nowhere.set('a', 1), { message: /no identity/ })

  // Each credential is honoured only in its own scope.
  const shopCookie = onShop.res.cookieHeader()
  const adminCookie = onAdmin.res.cookieHeader()
  const both = `${shopCookie}; ${adminCookie}`
  t.is((await manager.load(fakeRequest({ host: 'shop.example.com', url: '/', cookie: both }), new FakeResponse())).get('where'), 'Shop.Example.com:8443/cart')
  t.is(
    (await manager.load(fakeRequest({ host: 'admin.example.com', url: '/admin', cookie: both }), new FakeResponse())).get('where'),
    'admin.example.com/admin/users',
  )
  t.true((await manager.load(fakeRequest({ host: 'admin.example.com', url: '/', cookie: both }), new FakeResponse())).isNew)
  const token = onApi.session.id
  t.is(
    (await manager.load(fakeRequest({ host: 'x', url: '/api/me', headers: { 'x-session-token': token } }), new FakeResponse())).get('where'),
    'api.example.com/api/items',
  )
  t.true((await manager.load(fakeRequest({ host: 'x', url: '/web', headers: { 'x-session-token': token } }), new FakeResponse())).isNew)
})

test('the first candidate that loads a live session wins, in registration order', async (t) => {
  const cookie = new CookieIdentity({ keys: [TEST_KEY] })
  const header = new HeaderIdentity()
  // Both sessions are issued through the cookie (the first identity in scope); the header opens them only when shared.
  const manager = testManager({ identities: [cookie, header], shareSessions: [['cookie:sid', 'header:x-session-token']] })
  const viaCookie = new FakeResponse()
  const a = await manager.load(fakeRequest(), viaCookie)
  await a.set('who', 'cookie')
  const b = await manager.load(fakeRequest(), new FakeResponse())
  await b.set('who', 'second')
  // The cookie identity is asked first, so its session wins over the header's.
  const both = await manager.load(fakeRequest({ cookie: viaCookie.cookieHeader(), headers: { 'x-session-token': b.id } }), new FakeResponse())
  t.is(both.get('who'), 'cookie')
  t.is(both.identity, 'cookie:sid')
  // A dead cookie falls through to the header's live session.
  await both.destroy()
  const fallback = await manager.load(fakeRequest({ cookie: viaCookie.cookieHeader(), headers: { 'x-session-token': b.id } }), new FakeResponse())
  t.is(fallback.get('who'), 'second')
  t.is(fallback.identity, 'header:x-session-token')
})
