import test from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { isSessionError } from '../../src/errors.js'
import { SessionManager } from '../../src/session-manager.js'
import { MemoryStorage } from '../../storages/memory.js'
import { visit } from '../helpers/manager.js'

// renew() checks that the storage still has the session before writing its data under the new
// id: a session another process destroyed (a logout, an admin revoking it) while this process
// still caches it stays destroyed, and renew() does not bring it back under a fresh id.

test('renew() in a process that still caches a session destroyed elsewhere does not bring it back', async (t) => {
  const storage = new MemoryStorage()
  const options = { storage, identities: [new CookieIdentity()] }
  const one = new SessionManager(options)
  const two = new SessionManager(options)
  const created = await visit(one)
  await created.session.set('user', 'ada')
  const cached = await visit(two, created.cookie) // the second process caches it
  t.is(cached.session.get('user'), 'ada')

  const there = await visit(one, created.cookie)
  await there.session.destroy() // logged out (or revoked) through the first process

  const again = await visit(two, created.cookie) // still served from the second process's cache
  const code = await again.session.renew().then(
    () => 'ok',
    (error: unknown) => (isSessionError(error) ? error.code : String(error)),
  )
  t.is(code, 'SESSION_DESTROYED')
  t.is(await storage.length(), 0, 'no live session is left in storage')
  const next = await visit(two, again.cookie)
  t.is(next.session.get('user'), undefined, 'the renewed cookie opens nothing')
})
