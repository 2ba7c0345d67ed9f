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

  test(`${name}: has a name`, (t) => {
    t.regex(options.create().name, /^[a-z]+:.+/)
  })
}
