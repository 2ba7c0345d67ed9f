import test from 'ava'
import { createScope, pathMatches, requestHost, requestPath } from '../../src/scope.js'
import { isValidId, generateId, ID_LENGTH } from '../../src/ids.js'
import { fakeRequest } from '../helpers/fake-http.js'

test('hosts: case, ports, trailing dots, wildcards, IPv6', (t) => {
  t.is(requestHost(fakeRequest({ host: 'WWW.Example.COM:8080' }), false), 'www.example.com')
  t.is(requestHost(fakeRequest({ host: 'example.com.' }), false), 'example.com')
  t.is(requestHost(fakeRequest({ host: '[::1]:3000' }), false), '[::1]')
  t.is(requestHost(fakeRequest({ host: 'evil.com', headers: { 'x-forwarded-host': 'good.com' } }), false), 'evil.com')
  t.is(requestHost(fakeRequest({ host: 'evil.com', headers: { 'x-forwarded-host': 'good.com, other' } }), true), 'good.com')
  const scope = createScope({ host: ['*.example.com', 'example.org'] }, 'test')
  t.true(scope.matches(fakeRequest({ host: 'a.b.EXAMPLE.com:443' })))
  t.false(scope.matches(fakeRequest({ host: 'example.com' })))
  t.false(scope.matches(fakeRequest({ host: 'badexample.com' })))
  t.true(scope.matches(fakeRequest({ host: 'example.org.' })))
  t.false(scope.matches(fakeRequest({ host: 'example.org.evil.com' })))
  t.false(scope.matches({ headers: {} }))
})

test('paths match on segment boundaries after resolving dot segments', (t) => {
  t.true(pathMatches('/admin', '/admin'))
  t.true(pathMatches('/admin', '/admin/'))
  t.true(pathMatches('/admin', '/admin/users'))
  t.false(pathMatches('/admin', '/adminx'))
  t.false(pathMatches('/admin', '/'))
  t.is(requestPath('/admin/../public?x=1'), '/public')
  t.is(requestPath('/public/../admin/./users'), '/admin/users')
  t.is(requestPath('/../../admin'), '/admin')
  t.is(requestPath('http://host/admin/x?y'), '/admin/x')
  t.is(requestPath('*'), '/')
  t.is(requestPath(undefined), '/')
  const admin = createScope({ path: '/admin/' }, 'test')
  t.true(admin.matches(fakeRequest({ url: '/admin' })))
  t.false(admin.matches(fakeRequest({ url: '/admin/../x' })))
  t.true(admin.matches(fakeRequest({ url: '/x/../admin/y' })))
  t.false(admin.matches(fakeRequest({ url: '/adminx' })))
})

test('ids: 256 bits, base64url, canonical, unique', (t) => {
  const ids = new Set(Array.from({ length: 10_000 }, () => generateId()))
  t.is(ids.size, 10_000)
  for (const id of ids) {
    t.is(id.length, ID_LENGTH)
    if (!isValidId(id)) t.fail(id)
  }
  t.is(Buffer.from([...ids][0]!, 'base64url').length, 32)
  const id = [...ids][0]!
  t.false(isValidId(id.slice(0, 42) + 'B'), 'non-canonical last character')
  t.false(isValidId(`${id.slice(0, 10)}+${id.slice(11)}`))
  t.false(isValidId(undefined))
})
