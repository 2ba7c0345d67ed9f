import test from 'ava'
import session from 'express-session'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryBus } from '../../buses/memory.js'
import { RedisBus } from '../../buses/redis.js'
import { CookieIdentity } from '../../identities/cookie.js'
import { HeaderIdentity } from '../../identities/header.js'
import { SealedCookieIdentity } from '../../identities/sealed-cookie.js'
import { SessionManager, type SessionManagerOptions } from '../../src/session-manager.js'
import { DynamoDBStorage } from '../../storages/dynamodb.js'
import { ExpressStoreStorage } from '../../storages/express-store.js'
import { LevelStorage } from '../../storages/level.js'
import { MemoryStorage } from '../../storages/memory.js'
import { MySQLStorage } from '../../storages/mysql.js'
import { toExpressStore } from '../../storages/to-express-store.js'

// A misspelt option is refused at construction with a TypeError naming the owner, the option
// and the nearest known option, never silently ignored (which would leave the default in
// force). Construction must not reach a server first: these run with none.

const KEY = 'k'.repeat(40)
const unusedDirectory = join(tmpdir(), `csm-unknown-options-${process.pid}-${Date.now()}`)

/** [owner, construct with a misspelt option, the misspelling, the option meant]. */
const cases: ReadonlyArray<readonly [string, () => unknown, string, string]> = [
  ['SessionManager', () => new SessionManager({ storage: new MemoryStorage(), cacheLimt: 10 } as SessionManagerOptions), 'cacheLimt', 'cacheLimit'],
  ['MemoryStorage', () => new MemoryStorage({ maks: 10 } as never), 'maks', 'max'],
  ['LevelStorage', () => new LevelStorage({ location: unusedDirectory, cleanupIntervall: 0 } as never), 'cleanupIntervall', 'cleanupInterval'],
  ['MySQLStorage', () => new MySQLStorage({ uri: 'mysql://root@127.0.0.1:9/none', tabel: 'sessions' } as never), 'tabel', 'table'],
  ['DynamoDBStorage', () => new DynamoDBStorage({ table: 'sessions', createTables: true } as never), 'createTables', 'createTable'],
  ['ExpressStoreStorage', () => new ExpressStoreStorage(new session.MemoryStore(), { timout: 5 } as never), 'timout', 'timeout'],
  ['toExpressStore', () => toExpressStore(new MemoryStorage(), { tll: 60 } as never), 'tll', 'ttl'],
  ['CookieIdentity', () => new CookieIdentity({ keys: [KEY], httponly: false } as never), 'httponly', 'httpOnly'],
  ['HeaderIdentity', () => new HeaderIdentity({ headers: 'x-token' } as never), 'headers', 'header'],
  ['SealedCookieIdentity', () => new SealedCookieIdentity({ keys: [KEY], maxBytess: 4096 } as never), 'maxBytess', 'maxBytes'],
  ['MemoryBus', () => new MemoryBus({ maxQeue: 5 } as never), 'maxQeue', 'maxQueue'],
  ['RedisBus', () => new RedisBus({ url: 'redis://127.0.0.1:9', chanel: 'app' } as never), 'chanel', 'channel'],
]

for (const [owner, construct, given, meant] of cases) {
  test(`${owner} refuses option "${given}", suggesting "${meant}"`, (t) => {
    t.throws(construct, { instanceOf: TypeError, message: `${owner} option "${given}" is not known: did you mean "${meant}"?` })
  })
}

test('LevelStorage refuses a misspelt option before it creates its directory', (t) => {
  t.throws(() => new LevelStorage({ location: unusedDirectory, onCleanupErorr: () => {} } as never), { message: /did you mean "onCleanupError"\?$/ })
  t.false(existsSync(unusedDirectory))
})

test('the example of the README: cacheLimt', (t) => {
  t.throws(() => new SessionManager({ cacheLimt: 10 } as SessionManagerOptions), {
    instanceOf: TypeError,
    message: 'SessionManager option "cacheLimt" is not known: did you mean "cacheLimit"?',
  })
})

test('an option in the wrong case is what was meant: it is suggested', (t) => {
  t.throws(() => new SessionManager({ storage: new MemoryStorage(), MAXAGE: 60 } as SessionManagerOptions), {
    message: 'SessionManager option "MAXAGE" is not known: did you mean "maxAge"?',
  })
})

test('an unknown option set to undefined is refused too: a typo is a typo', (t) => {
  t.throws(() => new SessionManager({ storage: new MemoryStorage(), touchAftr: undefined } as SessionManagerOptions), {
    message: 'SessionManager option "touchAftr" is not known: did you mean "touchAfter"?',
  })
  t.throws(() => new MemoryBus({ orgin: undefined } as never), { message: 'MemoryBus option "orgin" is not known: did you mean "origin"?' })
})

test('known options set to undefined are accepted everywhere', async (t) => {
  const storage = new MemoryStorage({ max: undefined, now: undefined })
  const manager = new SessionManager({ storage, cacheLimit: undefined, maxAge: undefined, bus: undefined, now: undefined })
  t.truthy(new CookieIdentity({ keys: undefined, domain: undefined }))
  t.truthy(new HeaderIdentity({ header: undefined, path: undefined }))
  t.truthy(new SealedCookieIdentity({ keys: [KEY], maxBytes: undefined, openedCacheSize: undefined }))
  const bus = new MemoryBus({ origin: undefined, maxQueue: undefined })
  t.truthy(toExpressStore(storage, { ttl: undefined }))
  t.truthy(new ExpressStoreStorage(new session.MemoryStore(), { timeout: undefined, name: undefined }))
  await bus.close()
  await manager.close()
})

test('a far name gets no suggestion: the message lists the known options', (t) => {
  const error = t.throws(() => new SessionManager({ storage: new MemoryStorage(), colour: 'red' } as SessionManagerOptions), { instanceOf: TypeError })
  t.true(error.message.startsWith('SessionManager option "colour" is not known; the known options are "storage", "identities", '), error.message)
  t.false(error.message.includes('did you mean'), error.message)
  for (const name of ['cacheLimit', 'maxAge', 'touchAfter', 'bus', 'storageTimeout', 'now']) t.true(error.message.includes(`"${name}"`), name)
  t.throws(() => new HeaderIdentity({ token: 'x' } as never), {
    message: 'HeaderIdentity option "token" is not known; the known options are "header", "host", "path", "trustProxy"',
  })
})

test('a short name is suggested only for one edit', (t) => {
  t.throws(() => toExpressStore(new MemoryStorage(), { tl: 60 } as never), { message: /"tl" is not known: did you mean "ttl"\?/ })
  t.throws(() => toExpressStore(new MemoryStorage(), { foo: 60 } as never), { message: /"foo" is not known; the known options are "ttl", "now"$/ })
})

test('a swap of two neighbouring letters counts as one edit', (t) => {
  t.throws(() => new MemoryStorage({ mxa: 5 } as never), { message: /did you mean "max"\?/ })
})

test('only own enumerable string keys are checked', async (t) => {
  const withStorage = (options: object): SessionManagerOptions => Object.assign(options, { storage: new MemoryStorage() })
  const inherited = withStorage(Object.create({ cacheLimt: 10 }) as object)
  const hidden = withStorage(Object.defineProperty({}, 'cacheLimt', { value: 10, enumerable: false }))
  const symbol = withStorage({ [Symbol('cacheLimt')]: 10 })
  for (const options of [inherited, hidden, symbol]) {
    const manager = new SessionManager(options)
    t.truthy(manager)
    await manager.close()
  }
  t.throws(() => new SessionManager(withStorage(Object.assign(Object.create(null) as object, { cachelimit: 1 }))), {
    message: /did you mean "cacheLimit"\?/,
  })
})

test('a hostile option name: quoted, cut short, and cheap', (t) => {
  const long = `x${'a'.repeat(1_000_000)}`
  const started = performance.now()
  const error = t.throws(() => new MemoryStorage({ [long]: 1 }), { instanceOf: TypeError })
  t.true(performance.now() - started < 500, 'a long name is not compared letter by letter with every known one')
  t.true(error.message.length < 300, error.message)
  t.throws(() => new MemoryStorage({ 'max\nSet-Cookie: x': 1 } as never), { message: /option "max\\nSet-Cookie: x" is not known/ })
})
