import test, { type ExecutionContext } from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { SessionManager } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import { MemoryStorage } from '../../storages/memory.js'
import { deferred, outcome, startApp } from '../helpers/app-server.js'
import { TEST_KEY } from '../helpers/manager.js'

// A request is bound to the id it resolved. The attack: an attacker holds a session (the id is
// planted in the victim's browser, or the attacker simply keeps a slow request open on it), the
// victim logs in and the login renews the id; the attacker's request that came in with the OLD id
// is still running. It must not learn the new id, see what the login wrote, or change the session
// that is now the victim's: its writes, renew and destroy reject with SESSION_RENEWED.

type Act = (session: Session) => Promise<unknown>

const acts: Record<string, Act> = {
  read: () => Promise.resolve(),
  write: (session) => session.set('note', 'from the old id'),
  update: (session) => session.update('cart', () => ['stolen']),
  remove: (session) => session.remove('cart'),
  clear: (session) => session.clear(),
  renew: (session) => session.renew(),
  destroy: (session) => session.destroy(),
}

async function scenario(t: ExecutionContext, act: string) {
  const storage = new MemoryStorage()
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ keys: [TEST_KEY] })] })
  const arrived = deferred()
  const release = deferred()
  const app = await startApp(t, manager, {
    '/start': async (session) => {
      await session.set('cart', ['book'])
      return { id: session.id }
    },
    '/login': async (session) => {
      await session.renew()
      await session.set('user', 'victim')
      return { id: session.id }
    },
    '/whoami': (session) => ({ id: session.id, isNew: session.isNew, ...session.getAll() }),
    '/slow': async (session) => {
      const before = { id: session.id, data: session.getAll() }
      arrived.resolve()
      await release.promise // the login happens meanwhile
      const result = await outcome(acts[act]!(session))
      return { before, id: session.id, user: session.get('user') ?? null, data: session.getAll(), outcome: result }
    },
  })
  const attacker = app.client()
  const victim = app.client()
  const started = await attacker.get('/start')
  const fixedCookie = attacker.jar.header()
  victim.jar.absorb(started.setCookie) // the same id planted in the victim's browser
  const slow = attacker.get('/slow')
  await arrived.promise
  const login = await victim.get('/login')
  t.is(login.status, 200)
  const newId = login.body['id'] as string
  t.not(newId, started.body['id'])
  release.resolve()
  const answer = await slow
  return { app, storage, attacker, victim, fixedCookie, oldId: started.body['id'] as string, newId, answer }
}

test('a request that came in with the old id reads what it loaded: not the new id, not what the login wrote', async (t) => {
  const { answer, oldId, newId } = await scenario(t, 'read')
  t.is(answer.status, 200)
  t.is(answer.body['id'], oldId)
  t.not(answer.body['id'], newId)
  t.is(answer.body['user'], null)
  t.deepEqual(answer.body['data'], { cart: ['book'] })
  t.deepEqual(answer.setCookie, [], 'nothing is issued to it')
})

for (const act of ['write', 'update', 'remove', 'clear'] as const) {
  test(`a ${act} through the old id after the login renewed rejects with SESSION_RENEWED and changes nothing`, async (t) => {
    const { answer, oldId, storage, victim, newId } = await scenario(t, act)
    t.is(answer.body['outcome'], 'SESSION_RENEWED')
    t.is(answer.body['id'], oldId)
    t.deepEqual(answer.body['data'], { cart: ['book'] }, 'its view did not change either')
    t.deepEqual(answer.setCookie, [])
    t.deepEqual((await storage.get(newId))?.data, { cart: ['book'], user: 'victim' })
    t.is(await storage.get(oldId), undefined)
    const me = await victim.get('/whoami')
    t.deepEqual(me.body, { id: newId, isNew: false, cart: ['book'], user: 'victim' })
  })
}

test('a renew through the old id after the login renewed rejects, issues no cookie, and the victim stays logged in', async (t) => {
  const { answer, oldId, storage, victim, newId } = await scenario(t, 'renew')
  t.is(answer.body['outcome'], 'SESSION_RENEWED')
  t.is(answer.body['id'], oldId)
  t.deepEqual(answer.setCookie, [], 'no cookie for the logged-in session reaches the attacker')
  t.is(await storage.length(), 1)
  const me = await victim.get('/whoami')
  t.is(me.body['id'], newId)
  t.is(me.body['user'], 'victim')
})

test('a destroy through the old id after the login renewed rejects and does not log the victim out', async (t) => {
  const { answer, storage, victim, newId } = await scenario(t, 'destroy')
  t.is(answer.body['outcome'], 'SESSION_RENEWED')
  t.deepEqual(answer.setCookie, [], 'the cookie (now holding the new id) is not cleared')
  t.truthy(await storage.get(newId))
  const me = await victim.get('/whoami')
  t.is(me.body['user'], 'victim')
})

test('the old cookie replayed after the login opens a new, empty session', async (t) => {
  const { attacker, fixedCookie, newId } = await scenario(t, 'read')
  const replay = await attacker.get('/whoami', fixedCookie)
  t.true(replay.body['isNew'])
  t.not(replay.body['id'], newId)
  t.is(replay.body['user'], undefined)
})

test('the request that renewed keeps the new id and writes under it', async (t) => {
  const { victim, newId, storage } = await scenario(t, 'read')
  const me = await victim.get('/whoami')
  t.is(me.body['id'], newId)
  t.deepEqual((await storage.get(newId))?.data, { cart: ['book'], user: 'victim' })
})
