import test from 'ava'
import type { IncomingHttpHeaders } from 'node:http'
import { generateId } from '../../src/ids.js'
import type { Identity } from '../../src/types.js'
import { FakeResponse, fakeRequest } from './fake-http.js'

/** How an identity's test file hands it to the identity contract suite. */
export interface IdentityContractOptions {
  /** A new identity whose scope includes `inScope`. */
  create(): Identity
  /** Request headers and URL inside the identity's scope. */
  inScope: { url: string; host?: string }
  /** Request headers and URL outside it, if the identity has a narrower scope than everything. */
  outOfScope?: { url: string; host?: string }
  /** What a client sends back after receiving `res` (cookies from Set-Cookie, a token header...). */
  carry(res: FakeResponse): IncomingHttpHeaders
  /** Request headers that present `value` as a raw credential, unsigned. */
  present(value: string): IncomingHttpHeaders
  /** Whether the credential carries the session version given to `set` (read back by `versionOf`). */
  carriesVersion: boolean
}

/** The identity contract: every identity runs these tests. */
export function identityContract(name: string, options: IdentityContractOptions): void {
  const request = (headers: IncomingHttpHeaders = {}, at = options.inScope) => fakeRequest({ headers, url: at.url, host: at.host ?? 'localhost' })

  test(`${name}: a request in scope matches${options.outOfScope ? ', one out of scope does not' : ''}`, (t) => {
    const identity = options.create()
    t.true(identity.matches(request()))
    if (options.outOfScope) t.false(identity.matches(request({}, options.outOfScope)))
  })

  test(`${name}: a request without a credential has no candidate`, (t) => {
    t.deepEqual([...options.create().get(request())], [])
  })

  test(`${name}: an issued id comes back as the candidate`, (t) => {
    const identity = options.create()
    const id = generateId()
    const res = new FakeResponse()
    identity.set(request(), res, id, Date.now() + 60_000)
    t.deepEqual([...identity.get(request(options.carry(res)))], [id])
  })

  test(`${name}: malformed credentials are no candidates`, (t) => {
    const identity = options.create()
    const id = generateId()
    for (const value of [
      '',
      'short',
      id.slice(1),
      `${id}x`,
      id.replace(/.$/, 'B'),
      `${id.slice(0, 20)}+/${id.slice(22)}`,
      `${id.slice(0, 42)}\u00e9`,
      ' '.repeat(43),
    ]) {
      t.deepEqual([...identity.get(request(options.present(value)))], [], JSON.stringify(value))
    }
  })

  test(`${name}: after remove the client holds no candidate`, (t) => {
    const identity = options.create()
    const res = new FakeResponse()
    identity.set(request(), res, generateId(), Date.now() + 60_000)
    const cleared = new FakeResponse()
    identity.remove(request(options.carry(res)), cleared)
    t.deepEqual([...identity.get(request(options.carry(cleared)))], [])
  })

  test(`${name}: ${options.carriesVersion ? 'an id issued with a version comes back with it' : 'a version given to set is not carried'}`, (t) => {
    const identity = options.create()
    for (const version of [1, 7, 0, 1234567890, Number.MAX_SAFE_INTEGER]) {
      const id = generateId()
      const res = new FakeResponse()
      identity.set(request(), res, id, Date.now() + 60_000, version)
      const next = request(options.carry(res))
      t.deepEqual([...identity.get(next)], [id])
      t.is(identity.versionOf?.(next, id), options.carriesVersion ? version : undefined, String(version))
      // Only for the candidates of that request.
      t.is(identity.versionOf?.(next, generateId()), undefined)
      t.is(identity.versionOf?.(request(), id), undefined)
    }
  })

  test(`${name}: an id issued without a version has none`, (t) => {
    const identity = options.create()
    const id = generateId()
    const res = new FakeResponse()
    identity.set(request(), res, id, Date.now() + 60_000)
    const next = request(options.carry(res))
    t.deepEqual([...identity.get(next)], [id])
    t.is(identity.versionOf?.(next, id), undefined)
  })

  test(`${name}: a later set replaces the version the client holds`, (t) => {
    const identity = options.create()
    const id = generateId()
    const first = new FakeResponse()
    identity.set(request(), first, id, Date.now() + 60_000, 3)
    const second = new FakeResponse()
    identity.set(request(options.carry(first)), second, id, Date.now() + 60_000, 4)
    const next = request(options.carry(second))
    t.deepEqual([...identity.get(next)], [id])
    t.is(identity.versionOf?.(next, id), options.carriesVersion ? 4 : undefined)
  })

  test(`${name}: set without a version keeps the one the request carried for that id (a later deadline keeps it)`, (t) => {
    const identity = options.create()
    const id = generateId()
    const first = new FakeResponse()
    identity.set(request(), first, id, Date.now() + 60_000, 8)
    const req = request(options.carry(first))
    t.deepEqual([...identity.get(req)], [id])
    const touched = new FakeResponse()
    identity.set(req, touched, id, Date.now() + 120_000)
    const next = request(options.carry(touched))
    t.deepEqual([...identity.get(next)], [id])
    t.is(identity.versionOf?.(next, id), options.carriesVersion ? 8 : undefined)
    // Another id issued on that request (a renewed session) starts without one.
    const other = generateId()
    const renewed = new FakeResponse()
    identity.set(req, renewed, other, Date.now() + 60_000)
    const after = request(options.carry(renewed))
    t.deepEqual([...identity.get(after)], [other])
    t.is(identity.versionOf?.(after, other), undefined)
  })

  if (options.carriesVersion) {
    test(`${name}: set refuses a version that is not a safe non-negative integer`, (t) => {
      const identity = options.create()
      for (const version of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1, '3' as never, null as never]) {
        t.throws(() => identity.set(request(), new FakeResponse(), generateId(), Date.now() + 60_000, version), { instanceOf: TypeError }, String(version))
      }
    })

    test(`${name}: a malformed version part makes the credential no candidate`, (t) => {
      const identity = options.create()
      const id = generateId()
      for (const part of [
        '',
        '01',
        '00',
        '-1',
        '+1',
        ' 1',
        '1 2',
        '1e3',
        '0x1',
        '1.2',
        '.1',
        'one',
        '9007199254740992',
        '12345678901234567',
        '\uff11',
        '\u0663',
      ]) {
        t.deepEqual([...identity.get(request(options.present(`${id}.${part}`)))], [], JSON.stringify(part))
      }
      t.deepEqual([...identity.get(request(options.present(`${id}..1`)))], [])
      t.deepEqual([...identity.get(request(options.present(`${id}1`)))], [])
    })
  }

  if (options.create().withdraw !== undefined) {
    test(`${name}: withdraw takes back what set put on the response for that id, and nothing else`, (t) => {
      const identity = options.create()
      const id = generateId()
      const res = new FakeResponse()
      res.setHeader('Set-Cookie', ['theme=dark; path=/'])
      res.setHeader('x-app', 'kept')
      identity.set(request(), res, id, Date.now() + 60_000, 3)
      identity.withdraw!(request(), res, generateId())
      t.deepEqual([...identity.get(request(options.carry(res)))], [id], 'another id: nothing taken back')
      identity.withdraw!(request(), res, id)
      t.deepEqual([...identity.get(request(options.carry(res)))], [])
      t.deepEqual(res.setCookies, ['theme=dark; path=/'])
      t.is(res.getHeader('x-app'), 'kept')
      // Once the headers are sent nothing changes.
      const sent = new FakeResponse()
      identity.set(request(), sent, id, Date.now() + 60_000)
      sent.headersSent = true
      identity.withdraw!(request(), sent, id)
      t.deepEqual([...identity.get(request(options.carry(sent)))], [id])
    })
  }

  test(`${name}: has a name`, (t) => {
    t.regex(options.create().name, /^[a-z]+:.+/)
  })
}
