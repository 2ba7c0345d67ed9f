/**
 * The package as a user gets it: `npm pack`, the tarball installed into temporary consumer
 * projects, then type-checked there (`strict`, `skipLibCheck: false`) with only the packages
 * each entry point allows, the README's TypeScript examples type-checked, and every entry point
 * loaded with `require()` (CommonJS) and `import` on this Node. The compilers run in child
 * processes, at most two at a time (see `typecheck`), whatever ava runs concurrently.
 */
import test from 'ava'
import { existsSync } from 'node:fs'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PACKAGE_NAME, ROOT, codeBlocks, consumerProject, pack, removeWorkspace, run, runOk, tsBlocks, typecheck, workspace } from './consumer.js'

/** The storages' peer packages (what `caching-session-manager/storages/*` import at run time). */
const STORAGE_PEERS = ['classic-level', 'mysql2', '@aws-sdk/client-dynamodb', 'express-session']
/** The buses' peer packages (what `caching-session-manager/buses/*` import at run time). */
const BUS_PEERS = ['redis']
const EXPRESS_TYPES = ['@types/express']
/** Each check waits for the set-up (pack, installs) and for a compiler slot: generous on a busy machine. */
const TIMEOUT = 360_000 // npm and tsc in temporary projects: minutes on a loaded machine

interface Installed {
  dir: string
  files: string[]
  bare: string
  express: string
  koa: string
  fastify: string
  hono: string
  redis: string
  docs: string
  runtime: string
  /** Every subpath the exports map offers, wildcards expanded over the shipped files. */
  subpaths: string[]
}

let installed: Installed | undefined
let setupError: unknown

test.before(async () => {
  const dir = await workspace()
  try {
    const { tarball, files } = await pack(dir)
    const [bare, express, koa, fastify, hono, redis, docs, runtime] = await Promise.all([
      consumerProject(join(dir, 'bare'), tarball, ['@types/node']),
      consumerProject(join(dir, 'express'), tarball, ['@types/node', ...EXPRESS_TYPES]),
      consumerProject(join(dir, 'koa'), tarball, ['@types/node', '@types/koa']),
      consumerProject(join(dir, 'fastify'), tarball, ['@types/node', 'fastify']),
      consumerProject(join(dir, 'hono'), tarball, ['@types/node', 'hono']),
      consumerProject(join(dir, 'redis'), tarball, ['@types/node', ...BUS_PEERS]),
      consumerProject(join(dir, 'docs'), tarball, [
        '@types/node',
        ...EXPRESS_TYPES,
        '@types/koa',
        'fastify',
        'hono',
        ...STORAGE_PEERS,
        ...BUS_PEERS,
        '@types/express-session',
        ...(await packagesImportedBy(join(ROOT, 'README.md'))),
      ]),
      consumerProject(join(dir, 'runtime'), tarball, [...STORAGE_PEERS, ...BUS_PEERS]),
    ])
    installed = { dir, files, bare, express, koa, fastify, hono, redis, docs, runtime, subpaths: await subpathsOf(join(runtime, 'node_modules', PACKAGE_NAME)) }
  } catch (err) {
    setupError = err
  }
})

test.after.always(async () => {
  if (installed !== undefined) await removeWorkspace(installed.dir)
})

function ready(): Installed {
  if (installed === undefined) throw setupError instanceof Error ? setupError : new Error(String(setupError))
  return installed
}

/**
 * The packages the README's examples import that the docs project does not link already (and
 * their `@types/*` when installed), so a new example's imports resolve as they would for a user
 * who installed them.
 */
async function packagesImportedBy(markdown: string): Promise<string[]> {
  const known = new Set([
    '@types/node',
    ...EXPRESS_TYPES,
    '@types/koa',
    'fastify',
    'hono',
    ...STORAGE_PEERS,
    ...BUS_PEERS,
    '@types/express-session',
    'express',
    'koa',
  ])
  const found = new Set<string>()
  for (const { code } of tsBlocks(await readFile(markdown, 'utf8'))) {
    for (const [, specifier] of code.matchAll(/(?:from|import)\s+'([^'.][^']*)'/g)) {
      if (specifier === undefined || specifier.startsWith('node:') || specifier.startsWith(PACKAGE_NAME)) continue
      const parts = specifier.split('/')
      const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!
      const types = `@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`
      for (const candidate of [name, types]) {
        if (!known.has(candidate) && existsSync(join(ROOT, 'node_modules', candidate))) found.add(candidate)
      }
    }
  }
  return [...found]
}

async function subpathsOf(packageDir: string): Promise<string[]> {
  const manifest = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
  const subpaths: string[] = []
  for (const [key, target] of Object.entries(manifest.exports)) {
    if (!key.includes('*')) {
      subpaths.push(key)
      continue
    }
    const pattern = (target as { import: string }).import
    const [before, after] = pattern.split('*') as [string, string]
    for (const file of await readdir(join(packageDir, before))) {
      if (file.endsWith(after)) subpaths.push(key.replace('*', file.slice(0, file.length - after.length)))
    }
  }
  return subpaths.map((subpath) => (subpath === '.' ? PACKAGE_NAME : `${PACKAGE_NAME}/${subpath.slice(2)}`))
}

/** A test that `files` (name to source) type-check as one program, `name`, in the consumer project `project`. */
function typecheckTest(title: string, project: 'bare' | 'express' | 'koa' | 'fastify' | 'hono' | 'redis', name: string, files: Record<string, string>): void {
  test(title, async (t) => {
    t.timeout(TIMEOUT)
    t.is(await typechecks(ready()[project], name, files), '')
  })
}

/**
 * Write `files` (name to source) into the consumer project `dir` and type-check them as one
 * program; resolves with `''` when they compile, else with the compiler's output.
 */
async function typechecks(dir: string, name: string, files: Record<string, string>): Promise<string> {
  await Promise.all(Object.entries(files).map(([file, code]) => writeFile(join(dir, file), code)))
  const result = await typecheck(dir, name, Object.keys(files))
  return result.code === 0 ? '' : result.output
}

test('the tarball holds the build, README, LICENSE and CHANGELOG; no sources, no source maps; every exports target is in it', async (t) => {
  t.timeout(TIMEOUT)
  const { files, bare } = ready()
  t.true(files.includes('LICENSE'))
  t.true(files.includes('README.md'))
  t.true(files.includes('CHANGELOG.md'))
  t.true(files.includes('package.json'))
  t.deepEqual(
    files.filter((file) => file.endsWith('.map') || (file.endsWith('.ts') && !file.endsWith('.d.ts'))),
    [],
  )
  t.deepEqual(
    files.filter((file) => !file.startsWith('dist/') && !['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json'].includes(file)),
    [],
  )
  const packageDir = join(bare, 'node_modules', PACKAGE_NAME)
  for (const file of files.filter((name) => name.endsWith('.js') || name.endsWith('.d.ts'))) {
    t.false((await readFile(join(packageDir, file), 'utf8')).includes('sourceMappingURL'), file)
  }
  const manifest = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as {
    exports: Record<string, string | Record<string, string>>
    engines: { node: string }
    repository?: { url?: string }
    license: string
    peerDependencies: Record<string, string>
    peerDependenciesMeta?: Record<string, { optional?: boolean }>
  }
  t.is(manifest.engines.node, '>=20.19')
  t.deepEqual(Object.keys(manifest.peerDependencies).sort(), [...STORAGE_PEERS, ...BUS_PEERS].sort(), "the storages' and buses' clients are peers")
  for (const peer of Object.keys(manifest.peerDependencies)) t.true(manifest.peerDependenciesMeta?.[peer]?.optional, `${peer} is an optional peer`)
  t.is(manifest.license, 'MIT')
  t.truthy(manifest.repository?.url)
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (typeof target === 'string') continue
    t.deepEqual(Object.keys(target), ['types', 'import', 'require', 'default'], subpath)
    if (subpath.includes('*')) continue
    for (const file of Object.values(target)) t.true(files.includes(file.slice(2)), `${subpath}: ${file}`)
  }
})

// With no framework installed, a framework augmentation reachable from these entry points (Express's
// `req.session`, Koa's `ctx.session`, Fastify's) would fail here: its module cannot be found.
typecheckTest('the root and the framework-free subpaths (the memory bus too) type-check with only @types/node, from ESM and from CommonJS', 'bare', 'root', {
  'root.ts': `import { createServer } from 'node:http'
import {
  CookieIdentity,
  HeaderIdentity,
  MemoryStorage,
  SessionError,
  SessionManager,
  isSessionError,
  type AppSession,
  type Invalidation,
  type InvalidationBus,
  type InvalidationBusStats,
  type InvalidationListener,
  type InvalidationMessage,
  type Session,
  type SessionData,
  type Storage,
} from '${PACKAGE_NAME}'
import { createNodeMiddleware, type RequestWithSession } from '${PACKAGE_NAME}/node'
import { MemoryBus, MemoryBusNetwork, type MemoryBusOptions } from '${PACKAGE_NAME}/buses/memory'
import * as kit from '${PACKAGE_NAME}/kit'
import { MemoryStorage as Memory } from '${PACKAGE_NAME}/storages/memory'
import { CookieIdentity as Cookie, type KeygripLike } from '${PACKAGE_NAME}/identities/cookie'
import { HeaderIdentity as Header } from '${PACKAGE_NAME}/identities/header'

interface Data {
  views: number
}
const storage: Storage = new MemoryStorage()
const busOptions: MemoryBusOptions = { network: new MemoryBusNetwork() }
const bus: InvalidationBus = new MemoryBus(busOptions)
const listener: InvalidationListener = { onMessage: (message: InvalidationMessage) => void message.version }
bus.subscribe(listener)
const invalidation: Invalidation = { id: 'x', version: 1, kind: 'destroy' }
bus.publish(invalidation)
const busStats: InvalidationBusStats = bus.stats()
const manager = new SessionManager<Data>({ storage, bus, identities: [new CookieIdentity({ keys: ['k'.repeat(32)] }), new HeaderIdentity()] })
const sessions = manager.middleware()
const viaNode = createNodeMiddleware(manager)
createServer((req: RequestWithSession<Data>, res) =>
  sessions(req, res, async () => {
    const session: Session<Data> = req.session!
    await session.set('views', (session.get('views') ?? 0) + 1)
    res.end()
  }),
)
const signer: KeygripLike = { sign: (data) => data, verify: () => true, index: () => 0 }
export const used = [kit, Memory, Cookie, Header, viaNode, signer, SessionError, isSessionError(new Error('x')), busStats.connected]
export type Used = [AppSession, SessionData]
`,
  'require.cts': `import csm = require('${PACKAGE_NAME}')
import memory = require('${PACKAGE_NAME}/storages/memory')
import buses = require('${PACKAGE_NAME}/buses/memory')
const bus: csm.InvalidationBus = new buses.MemoryBus()
const manager: csm.SessionManager = new csm.SessionManager({ storage: new memory.MemoryStorage(), bus })
export = manager
`,
})

typecheckTest('caching-session-manager/express types req.session and res.session with only @types/express', 'express', 'express', {
  'express.ts': `import express from 'express'
import { SessionManager, type AppSession } from '${PACKAGE_NAME}'
import { createNodeMiddleware } from '${PACKAGE_NAME}/express'

const manager = new SessionManager()
const app = express()
app.use(manager.middleware())
app.use(createNodeMiddleware(manager))
app.get('/', async (req, res) => {
  const session: AppSession = req.session
  await req.session.set('views', Number(req.session.get('views') ?? 0) + 1)
  const same: AppSession = res.session
  res.json({ same: same === session })
})
`,
})

typecheckTest('caching-session-manager/koa types ctx.session with only @types/koa', 'koa', 'koa', {
  'koa.ts': `import Koa from 'koa'
import { SessionManager, type AppSession } from '${PACKAGE_NAME}'
import { createKoaMiddleware } from '${PACKAGE_NAME}/koa'

const manager = new SessionManager()
const app = new Koa()
app.use(manager.koa())
app.use(createKoaMiddleware(manager))
app.use(async (ctx) => {
  const session: AppSession = ctx.session
  await session.set('views', Number(ctx.session.get('views') ?? 0) + 1)
  ctx.session = null
  // @ts-expect-error only null may be assigned
  ctx.session = { views: 1 }
})
`,
})

typecheckTest('caching-session-manager/fastify type-checks with only fastify and types request.session', 'fastify', 'fastify', {
  'fastify.ts': `import Fastify from 'fastify'
import { SessionManager, type AppSession } from '${PACKAGE_NAME}'
import fastifySession, { createFastifyPlugin, type FastifySessionOptions } from '${PACKAGE_NAME}/fastify'

const manager = new SessionManager<{ views: number }>()
const app = Fastify()
const options: FastifySessionOptions = { manager }
await app.register(fastifySession, options)
await Fastify().register(createFastifyPlugin(manager))
app.get('/', async (request) => {
  const session: AppSession = request.session
  await session.set('views', Number(request.session.get('views') ?? 0) + 1)
  return { views: request.session.get('views') }
})
`,
})

typecheckTest("caching-session-manager/hono type-checks with only hono and types c.get('session') through Variables", 'hono', 'hono', {
  'hono.ts': `import { Hono } from 'hono'
import { SessionManager, type AppSession } from '${PACKAGE_NAME}'
import honoSessionDefault, { createHonoMiddleware, honoSession, type HonoSessionMiddleware, type HonoSessionOptions, type SessionEnv } from '${PACKAGE_NAME}/hono'

const manager = new SessionManager<{ views: number }>()
const options: HonoSessionOptions = { manager }
const middleware: HonoSessionMiddleware = honoSession(options)
const app = new Hono<SessionEnv>()
app.use(middleware)
app.use(createHonoMiddleware(manager))
app.use(honoSessionDefault({ manager }))
app.get('/', async (c) => {
  const session: AppSession = c.get('session')
  await session.set('views', Number(session.get('views') ?? 0) + 1)
  return c.json({ views: c.get('session').get('views') })
})
// Chained, the middleware's Variables reach the routes of an untyped app too.
new Hono().use(honoSession({ manager })).get('/', (c) => c.json({ isNew: c.get('session').isNew }))
`,
})

// redis is an optional peer: the root and /buses/memory need it nowhere (above); /buses/redis types
// its options with redis's own client.
typecheckTest('caching-session-manager/buses/redis type-checks with redis installed, from ESM and from CommonJS', 'redis', 'redis', {
  'redis.ts': `import { createClient } from 'redis'
import { SessionManager, type InvalidationBus } from '${PACKAGE_NAME}'
import { RedisBus, type RedisBusClient, type RedisBusOptions } from '${PACKAGE_NAME}/buses/redis'

const client: RedisBusClient = createClient({ url: 'redis://127.0.0.1:6379' })
const options: RedisBusOptions = { client, channel: 'app:sessions', maxQueue: 100, onError: (err: unknown) => console.error(err) }
const bus: InvalidationBus = new RedisBus(options)
const byUrl = new RedisBus({ url: 'redis://127.0.0.1:6379' })
export const manager = new SessionManager({ bus, trustCacheFor: 10 })
export const channel: string = byUrl.channel
`,
  'redis-require.cts': `import csm = require('${PACKAGE_NAME}')
import buses = require('${PACKAGE_NAME}/buses/redis')
const bus: csm.InvalidationBus = new buses.RedisBus({ url: 'redis://127.0.0.1:6379' })
export = bus
`,
})

/**
 * An example that imports a framework (or any other package), one of this package's framework
 * subpaths, or declares anything global can change or depend on what another example's imports
 * declare (module augmentation is program-wide): it gets a program of its own. The others (node's
 * modules and this package's framework-free entry points only) share one program.
 */
function needsOwnProgram(code: string): boolean {
  if (/\bdeclare\s+(module|global)\b/.test(code)) return true
  for (const [, specifier] of code.matchAll(/(?:from|import)\s+'([^']+)'/g)) {
    if (specifier === undefined || specifier.startsWith('node:')) continue
    // The entry points that declare nothing global (to-express-store loads express-session's `req.session`).
    if (specifier === PACKAGE_NAME || /^caching-session-manager\/(node|kit|storages\/(?!to-express-store$)[a-z-]+|identities\/[a-z-]+)$/.test(specifier))
      continue
    return true
  }
  return false
}

test('every ```ts example of the shipped README type-checks', async (t) => {
  t.timeout(TIMEOUT)
  const { docs } = ready()
  const readme = await readFile(join(docs, 'node_modules', PACKAGE_NAME, 'README.md'), 'utf8')
  const blocks = tsBlocks(readme)
  t.true(blocks.length > 0, 'the README has ```ts examples')
  const files = await Promise.all(
    blocks.map(async (block, index) => {
      const file = `readme-${index + 1}.ts`
      // Each example is its own module (top-level await allowed; no names shared with the others).
      await writeFile(join(docs, file), `${block.code}\nexport {}\n`)
      return { file, line: block.line, alone: needsOwnProgram(block.code) }
    }),
  )
  const programs = [files.filter((file) => !file.alone), ...files.filter((file) => file.alone).map((file) => [file])].filter((group) => group.length > 0)
  const results = await Promise.all(
    programs.map(async (group, index) => {
      const result = await typecheck(
        docs,
        `readme-${index + 1}`,
        group.map(({ file }) => file),
      )
      if (result.code === 0) return ''
      const lines = group.map(({ file, line }) => `${file} is the example at README.md line ${line}`).join('\n')
      return `${lines}\n${result.output}`
    }),
  )
  t.deepEqual(
    results.filter((result) => result !== ''),
    [],
  )
})

test('every code block of the shipped README is TypeScript (type-checked above), CommonJS (run here) or shell', async (t) => {
  t.timeout(TIMEOUT)
  const { runtime } = ready()
  const readme = await readFile(join(runtime, 'node_modules', PACKAGE_NAME, 'README.md'), 'utf8')
  const blocks = codeBlocks(readme)
  t.deepEqual(
    blocks.filter((block) => !['ts', 'js', 'sh'].includes(block.language)).map((block) => `README.md line ${block.line}: \`\`\`${block.language}`),
    [],
  )
  const shell = blocks.filter((block) => block.language === 'sh').map((block) => block.code)
  for (const setUp of ['npm install && npm start', 'npm install && npm test'])
    t.true(
      shell.some((code) => code.split('\n').includes(setUp)),
      `the set-up command: ${setUp}`,
    )
  const scripts = blocks.filter((block) => block.language === 'js')
  t.true(scripts.length > 0, 'the README has a CommonJS example')
  for (const [index, block] of scripts.entries()) {
    const file = `readme-${index + 1}.cjs`
    await writeFile(join(runtime, file), `${block.code}\n`)
    const result = await run(process.execPath, [file], runtime)
    t.is(result.code, 0, `the example at README.md line ${block.line}:\n${result.output}`)
  }
  for (const block of blocks.filter((candidate) => candidate.language === 'sh')) {
    for (const command of block.code.split('\n').filter((line) => line.trim() !== '')) {
      t.regex(command, /^(npm|npx|node) /, `README.md line ${block.line}: a plain npm, npx or node command`)
    }
  }
})

test('CommonJS: require() of the root and of every subpath works on this Node, and a required SessionManager serves a request', async (t) => {
  t.timeout(TIMEOUT)
  const { runtime, subpaths } = ready()
  await writeFile(
    join(runtime, 'require.cjs'),
    `'use strict'
const { createServer } = require('node:http')
const loaded = {}
for (const subpath of ${JSON.stringify(subpaths)}) loaded[subpath] = Object.keys(require(subpath)).sort()
const { SessionManager, CookieIdentity, MemoryStorage } = require('${PACKAGE_NAME}')
const manager = new SessionManager({ storage: new MemoryStorage(), identities: [new CookieIdentity({ keys: ['k'.repeat(32)] })] })
const sessions = manager.middleware()
const server = createServer((req, res) => sessions(req, res, async () => {
  await req.session.set('views', 1)
  res.end(String(req.session.get('views')))
}))
server.listen(0, '127.0.0.1', async () => {
  const response = await fetch('http://127.0.0.1:' + server.address().port + '/')
  const body = await response.text()
  server.close()
  await manager.close()
  console.log(JSON.stringify({ loaded, body, cookie: response.headers.get('set-cookie') !== null }))
})
`,
  )
  const out = JSON.parse(await runOk(process.execPath, ['require.cjs'], runtime)) as { loaded: Record<string, string[]>; body: string; cookie: boolean }
  t.deepEqual(Object.keys(out.loaded).sort(), [...subpaths].sort())
  checkExports(t, out.loaded)
  t.is(out.body, '1')
  t.true(out.cookie)
})

test('ESM: import of the root and of every subpath works, and an imported SessionManager loads a session', async (t) => {
  t.timeout(TIMEOUT)
  const { runtime, subpaths } = ready()
  await writeFile(
    join(runtime, 'import.mjs'),
    `const loaded = {}
for (const subpath of ${JSON.stringify(subpaths)}) {
  const module = subpath.endsWith('/package.json') ? await import(subpath, { with: { type: 'json' } }) : await import(subpath)
  loaded[subpath] = Object.keys(module).sort()
}
const { SessionManager } = await import('${PACKAGE_NAME}')
const { MemoryStorage } = await import('${PACKAGE_NAME}/storages/memory')
const manager = new SessionManager({ storage: new MemoryStorage() })
const headers = {}
const res = { getHeader: (name) => headers[name], setHeader: (name, value) => { headers[name] = value }, removeHeader: (name) => { delete headers[name] }, headersSent: false }
const session = await manager.load({ headers: {}, url: '/', socket: {} }, res)
await session.set('views', 2)
const views = session.get('views')
await manager.close()
console.log(JSON.stringify({ loaded, views }))
`,
  )
  const out = JSON.parse(await runOk(process.execPath, ['import.mjs'], runtime)) as { loaded: Record<string, string[]>; views: number }
  t.deepEqual(Object.keys(out.loaded).sort(), [...subpaths].sort())
  checkExports(t, out.loaded)
  t.is(out.views, 2)
})

/** What each entry point must export (named exports; `default` where there is one). */
function checkExports(t: import('ava').ExecutionContext, loaded: Record<string, string[]>): void {
  const has = (subpath: string, ...names: string[]): void => {
    const exported = loaded[`${PACKAGE_NAME}${subpath}`]
    for (const name of names) t.true(exported?.includes(name), `${PACKAGE_NAME}${subpath} exports ${name}`)
  }
  has('', 'SessionManager', 'Session', 'SessionError', 'isSessionError', 'MemoryStorage', 'CookieIdentity', 'HeaderIdentity', 'createNodeMiddleware')
  has('/node', 'createNodeMiddleware')
  has('/express', 'createNodeMiddleware')
  has('/koa', 'createKoaMiddleware')
  has('/fastify', 'default', 'fastifySession', 'createFastifyPlugin')
  has('/storages/memory', 'MemoryStorage')
  has('/storages/level', 'LevelStorage')
  has('/storages/mysql', 'MySQLStorage')
  has('/storages/dynamodb', 'DynamoDBStorage')
  has('/buses/memory', 'MemoryBus', 'MemoryBusNetwork')
  has('/buses/redis', 'RedisBus')
  has('/identities/cookie', 'CookieIdentity')
  has('/identities/header', 'HeaderIdentity')
  t.true((loaded[`${PACKAGE_NAME}/kit`]?.length ?? 0) > 0, 'caching-session-manager/kit exports something')
}

test('without any peer installed, the root, the memory storage and the memory bus load (CommonJS and ESM) and /buses/redis asks for redis', async (t) => {
  t.timeout(TIMEOUT)
  const { bare } = ready()
  await writeFile(
    join(bare, 'no-peers.cjs'),
    `'use strict'
const { SessionManager, MemoryStorage } = require('${PACKAGE_NAME}')
const { MemoryBus, MemoryBusNetwork } = require('${PACKAGE_NAME}/buses/memory')
const network = new MemoryBusNetwork()
const [a, b] = [new MemoryBus({ network }), new MemoryBus({ network })]
const manager = new SessionManager({ storage: new MemoryStorage(), bus: a })
b.subscribe({
  onMessage: async (message) => {
    await manager.close()
    await Promise.all([a.close(), b.close()])
    console.log(JSON.stringify({ kind: message.kind, id: message.id }))
  },
})
a.publish({ id: 'some-id', version: 3, kind: 'destroy' })
`,
  )
  await writeFile(
    join(bare, 'no-peers.mjs'),
    `await import('${PACKAGE_NAME}')\nawait import('${PACKAGE_NAME}/buses/memory')\nawait import('${PACKAGE_NAME}/buses/redis')\n`,
  )
  t.deepEqual(JSON.parse(await runOk(process.execPath, ['no-peers.cjs'], bare)), { kind: 'destroy', id: 'some-id' })
  const redis = await run(process.execPath, ['no-peers.mjs'], bare)
  t.not(redis.code, 0)
  t.regex(redis.output, /Cannot find (package|module) 'redis'/)
})
