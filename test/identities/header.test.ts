import test from 'ava'
import { HeaderIdentity } from '../../identities/header.js'
import { generateId } from '../../src/ids.js'
import { fakeRequest, type FakeResponse } from '../helpers/fake-http.js'
import { identityContract } from '../helpers/identity-contract.js'

identityContract('header', {
  create: () => new HeaderIdentity(),
  inScope: { url: '/' },
  carry: (res: FakeResponse) => ({ 'x-session-token': String(res.getHeader('x-session-token') ?? '') }),
  present: (value) => ({ 'x-session-token': value }),
  carriesVersion: false,
})

identityContract('header (scoped)', {
  create: () => new HeaderIdentity({ header: 'X-Api-Session', path: '/api', host: 'api.example.com' }),
  inScope: { url: '/api/v1/me', host: 'API.example.com.' },
  outOfScope: { url: '/apix', host: 'api.example.com' },
  carry: (res: FakeResponse) => ({ 'x-api-session': String(res.getHeader('x-api-session') ?? '') }),
  present: (value) => ({ 'x-api-session': value }),
  carriesVersion: false,
})

test('exactly one token: duplicates joined with commas, arrays and padding tricks are refused', (t) => {
  const identity = new HeaderIdentity()
  const id = generateId()
  const other = generateId()
  t.deepEqual([...identity.get(fakeRequest({ headers: { 'x-session-token': `  ${id}  ` } }))], [id])
  for (const value of [`${id}, ${other}`, `${id},${id}`, `${id} ${other}`, `Bearer ${id}`, '', `${id}\u0000`]) {
    t.deepEqual([...identity.get(fakeRequest({ headers: { 'x-session-token': value } }))], [], JSON.stringify(value))
  }
  t.deepEqual([...identity.get(fakeRequest({ headers: { 'x-session-token': [id, other] as never } }))], [])
  t.deepEqual([...identity.get(fakeRequest({ headers: { 'x-session-token': 'a'.repeat(100_000) } }))], [])
})

test('header names are checked', (t) => {
  for (const header of ['', 'bad header', 'cookie', 'Set-Cookie', 'authorization', 'x:y']) {
    t.throws(() => new HeaderIdentity({ header }), { instanceOf: TypeError, message: /"header"/ }, header)
  }
})
