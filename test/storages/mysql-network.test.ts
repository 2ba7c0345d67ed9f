import test, { type ExecutionContext } from 'ava'
import { CookieIdentity } from '../../identities/cookie.js'
import { isSessionError } from '../../src/errors.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import type { Session } from '../../src/session.js'
import { MySQLStorage } from '../../storages/mysql.js'
import { AckLedger } from '../helpers/ack-ledger.js'
import { Browser, fakeRequest, FakeResponse } from '../helpers/fake-http.js'
import { closeAdmin, dropTable, uniqueTable } from '../helpers/mysql.js'
import { MYSQL_URL, probeTcp, serviceTest } from '../helpers/services.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'

// MariaDB behind a TCP proxy that cuts, refuses and stalls connections. Whatever the network
// does, every acknowledged write is in the table afterwards (read back over a direct connection).

const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))
test.after.always(closeAdmin)

interface Rig {
  proxy: TcpProxy
  table: string
  /** Storage of the manager under test, through the proxy. */
  storage: MySQLStorage
  manager: SessionManager
  /** A direct connection to the same table, to check what landed. */
  direct: MySQLStorage
}

async function rig(t: ExecutionContext, options: SessionManagerOptions = {}): Promise<Rig> {
  const target = new URL(MYSQL_URL)
  const proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 3306) })
  const table = uniqueTable('sessions_faults')
  const proxied = new URL(MYSQL_URL)
  proxied.hostname = '127.0.0.1'
  proxied.port = String(proxy.port)
  const storage = new MySQLStorage({ uri: proxied.toString(), table })
  const direct = new MySQLStorage({ uri: MYSQL_URL, table })
  const manager = new SessionManager({ storage, identities: [new CookieIdentity({ secure: false })], writeRetries: 4, retryDelay: 5, ...options })
  manager.on('error', () => undefined)
  t.teardown(async () => {
    proxy.resume()
    proxy.refuse(false)
    await manager.close().catch(() => undefined)
    await direct.close()
    await proxy.close()
    await dropTable(table)
  })
  return { proxy, table, storage, manager, direct }
}

async function startSessions(manager: SessionManager, count: number, ledger: AckLedger): Promise<Browser[]> {
  const list: Browser[] = []
  for (let i = 0; i < count; i++) {
    const browser = new Browser()
    await browser.request(manager, async (session) => {
      await session.set('n', 0)
      ledger.acknowledged(session.id, 'n', 0)
    })
    list.push(browser)
  }
  return list
}

/** Load a session the way a client retries a 503: a read on a connection the proxy just reset fails once. */
async function loadRetrying(manager: SessionManager, id: string): Promise<Session> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await manager.load(fakeRequest({ cookie: `sid=${id}` }), new FakeResponse())
    } catch (error) {
      if (attempt === 5 || !isSessionError(error, 'SESSION_STORAGE_UNAVAILABLE')) throw error
    }
  }
}

function codeOf(error: unknown): string {
  return isSessionError(error) ? error.code : `not a SessionError: ${String(error)}`
}

mysqlTest('connections cut again and again mid-traffic: writes are retried or refused, and every acknowledged one is in MariaDB', async (t) => {
  const { proxy, manager, direct } = await rig(t)
  const ledger = new AckLedger()
  const list = await startSessions(manager, 15, ledger)
  const counts = { acknowledged: 0, refused: 0, unavailable: 0, cuts: 0 }
  await Promise.all(
    list.map(async (browser) => {
      for (let value = 1; value <= 12; value++) {
        try {
          await browser.request(manager, async (session: Session) => {
            await session.set('n', value)
            ledger.acknowledged(session.id, 'n', value)
            // Every 7th acknowledgement resets every connection of the pool.
            if (++counts.acknowledged % 7 === 0) {
              proxy.cut()
              counts.cuts++
            }
          })
        } catch (error) {
          const code = codeOf(error)
          if (code === 'SESSION_STORAGE_FAILED') counts.refused++
          else if (code === 'SESSION_STORAGE_UNAVAILABLE') counts.unavailable++
          else t.fail(code)
        }
      }
    }),
  )
  t.log(counts)
  t.true(counts.cuts > 0)
  const report = await ledger.verify(direct)
  t.is(report.keys, 15)
  t.deepEqual(report.missing, [])
})

mysqlTest(
  'MariaDB unreachable: cached sessions are served, writes are refused, cache misses are 503; after it is back nothing acknowledged is missing',
  async (t) => {
    const { proxy, manager, direct } = await rig(t, { writeRetries: 1 })
    const ledger = new AckLedger()
    const list = await startSessions(manager, 6, ledger)
    const [writer, ...readers] = list
    proxy.refuse(true)
    for (const browser of readers) {
      const { result } = await browser.request(manager, (session) => session.get('n'))
      t.is(result, 0, 'served from the cache')
    }
    const refused = await writer!.request(manager, (session) => session.set('n', 1)).then(() => 'ok', codeOf)
    t.is(refused, 'SESSION_STORAGE_FAILED')
    // Another process's session is a cache miss here: 503, never a fresh session.
    const other = await direct.get(ledger.ids()[0]!)
    t.truthy(other)
    const miss = await writer!.request(manager, (session) => session).then(() => 'served', codeOf)
    t.is(miss, 'SESSION_STORAGE_UNAVAILABLE')
    proxy.refuse(false)
    for (const browser of list) {
      const { result } = await browser.request(manager, (session) => session)
      t.false(result.isNew)
      t.is(result.get('n'), 0)
    }
    t.deepEqual((await ledger.verify(direct)).missing, [])
  },
)

mysqlTest('a stalled network: writes wait, the queue stays bounded with SESSION_QUEUE_FULL, and after it resumes the accepted writes land', async (t) => {
  const { proxy, manager, direct } = await rig(t, { maxPendingWrites: 8, batching: false })
  const ledger = new AckLedger()
  const list = await startSessions(manager, 12, ledger)
  const sessions = (await Promise.all(list.map((browser) => browser.request(manager, (session) => session)))).map((visit) => visit.result)
  proxy.pause()
  const settled: string[] = []
  const writes = sessions.map((session) =>
    session.set('n', 1).then(
      () => {
        ledger.acknowledged(session.id, 'n', 1)
        settled.push('ok')
      },
      (error: unknown) => {
        settled.push(codeOf(error))
      },
    ),
  )
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.deepEqual(
    settled.filter((code) => code === 'ok'),
    [],
    'nothing is acknowledged while the network is stalled',
  )
  t.true(settled.includes('SESSION_QUEUE_FULL'), 'writes past the bound were refused at once')
  t.is(manager.stats().pendingWrites, 8)
  proxy.resume()
  await Promise.all(writes)
  t.is(settled.filter((code) => code === 'ok').length, 8)
  t.deepEqual((await ledger.verify(direct)).missing, [])
})

mysqlTest('two managers on one table, one through a cutting proxy: different keys all land, the same key ends on a last write', async (t) => {
  const { proxy, manager: proxied, table } = await rig(t)
  const direct = new SessionManager({
    storage: new MySQLStorage({ uri: MYSQL_URL, table }),
    identities: [new CookieIdentity({ secure: false })],
    writeRetries: 4,
    retryDelay: 5,
  })
  t.teardown(() => direct.close())
  const sessions = 8
  const writesEach = 10
  const ledger = new AckLedger()
  const ids: string[] = []
  for (let i = 0; i < sessions; i++) {
    const res = new FakeResponse()
    const session = await direct.load(fakeRequest(), res)
    await session.set('seed', 0)
    ids.push(session.id)
  }
  const lastAcked = new Map<string, { direct: number; proxied: number }>()
  let acknowledged = 0
  const run = async (manager: SessionManager, name: 'direct' | 'proxied', parity: number): Promise<void> => {
    for (const id of ids) {
      const session = await loadRetrying(manager, id)
      for (let i = 1; i <= writesEach; i++) {
        const value = 2 * i - parity // direct writes odd values, proxied even ones
        const own = session.set(name, i).then(() => ledger.acknowledged(id, name, i))
        const shared = session.set('shared', value).then(() => {
          const entry = lastAcked.get(id) ?? { direct: 0, proxied: 0 }
          entry[name] = value
          lastAcked.set(id, entry)
          if (name === 'proxied' && ++acknowledged % 5 === 0) proxy.cut()
        })
        await Promise.allSettled([own, shared])
      }
    }
  }
  await Promise.all([run(direct, 'direct', 1), run(proxied, 'proxied', 0)])
  const check = new MySQLStorage({ uri: MYSQL_URL, table })
  t.teardown(() => check.close())
  const report = await ledger.verify(check)
  t.deepEqual(report.missing, [], 'each manager keeps its own keys: no lost update')
  for (const id of ids) {
    const record = await check.get(id)
    const shared = record?.data['shared']
    const last = lastAcked.get(id)!
    t.true(
      shared === last.direct || shared === last.proxied || (typeof shared === 'number' && shared > Math.min(last.direct, last.proxied)),
      `shared=${String(shared)} last=${JSON.stringify(last)}`,
    )
    t.is(record?.data['seed'], 0)
  }
})
