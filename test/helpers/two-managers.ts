import type { ExecutionContext } from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Storage } from '../../src/types.js'
import { FakeResponse, fakeRequest } from './fake-http.js'

/**
 * Two managers (two processes, in effect: separate storages and caches) serve the same session
 * through the same cookie, and each writes different keys at the same time. A storage whose
 * `update` reads the record, changes it and writes it back whole loses keys of the other
 * manager (checked: such a variant of MySQLStorage fails here); per-key writes keep both.
 */
export async function twoManagersKeepTheirWrites(t: ExecutionContext, open: () => Promise<Storage>, keysEach = 10): Promise<void> {
  const first = new SessionManager({ storage: await open(), identities: [new CookieIdentity()] })
  const second = new SessionManager({ storage: await open(), identities: [new CookieIdentity()] })
  try {
    const created = new FakeResponse()
    const session = await first.load(fakeRequest(), created)
    await session.set('seed', 'from first')
    const cookie = `sid=${created.cookies().get('sid')!.value}`

    const inFirst = await first.load(fakeRequest({ cookie }), new FakeResponse())
    const inSecond = await second.load(fakeRequest({ cookie }), new FakeResponse())
    t.is(inSecond.id, inFirst.id)
    t.is(inSecond.get('seed'), 'from first', 'the second manager loaded the session from storage')
    t.is(second.stats().loads, 1)

    const writes: Array<Promise<void>> = []
    for (let i = 0; i < keysEach; i++) writes.push(inFirst.set(`first${i}`, i), inSecond.set(`second${i}`, { i, by: 'second' }))
    await Promise.all(writes)

    const stored = await first.storage.get(inFirst.id)
    const expected: Record<string, unknown> = { seed: 'from first' }
    for (let i = 0; i < keysEach; i++) {
      expected[`first${i}`] = i
      expected[`second${i}`] = { i, by: 'second' }
    }
    t.deepEqual(stored?.data, expected)
    t.deepEqual((await second.storage.get(inFirst.id))?.data, expected)
  } finally {
    await Promise.all([first.close(), second.close()])
  }
}
