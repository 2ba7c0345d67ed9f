/**
 * Temporary consumer projects for the package tests: the package as `npm pack` makes it,
 * installed from its tarball with npm, next to only the packages a given check allows.
 *
 * The tarball's own dependencies are installed by npm from a lockfile written here from the
 * repository's (same versions, with their registry URLs and integrity), so npm takes them from
 * its cache, which `npm ci` of the repository filled: no network and about a second per
 * project. TypeScript is the repository's (run from its own folder); `@types/*`, the frameworks
 * and the storages' peers are symlinks to the repository's installed copies, laid out at the top
 * of `node_modules` as npm hoists them. The package itself is a real copy, so what its files
 * import resolves only against the consumer project's `node_modules`.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, parse } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const REPO_MODULES = join(ROOT, 'node_modules')
const TSC = join(REPO_MODULES, 'typescript', 'lib', 'tsc.js')
export const PACKAGE_NAME = 'caching-session-manager'

export interface RunResult {
  readonly code: number
  readonly output: string
}

/** Environment of child processes: none of the outer npm run's package context, no coverage collection. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('npm_package_') || key.startsWith('npm_lifecycle_') || key === 'npm_config_local_prefix' || key === 'INIT_CWD') continue
    if (key === 'NODE_V8_COVERAGE' || key === 'NODE_OPTIONS') continue
    env[key] = value
  }
  return env
}

/** Run a command; resolves with its exit code and combined output (never rejects on a non-zero exit). */
export function run(file: string, args: readonly string[], cwd: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env: childEnv(), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`
      if (err === null) return resolve({ code: 0, output })
      if (typeof err.code === 'number') return resolve({ code: err.code, output })
      reject(err)
    })
  })
}

/** Run and require exit code 0. */
export async function runOk(file: string, args: readonly string[], cwd: string): Promise<string> {
  const result = await run(file, args, cwd)
  if (result.code !== 0) throw new Error(`${file} ${args.join(' ')} (in ${cwd}) exited with ${result.code}:\n${result.output}`)
  return result.output
}

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'

/** A temporary folder whose ancestors hold no `node_modules` (which would leak packages into the checks). */
export async function workspace(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'csm-package-'))
  for (let at = dirname(dir); ; at = dirname(at)) {
    if (existsSync(join(at, 'node_modules'))) throw new Error(`${at}/node_modules exists: the consumer projects in ${dir} would see its packages`)
    if (at === parse(at).root) break
  }
  return dir
}

export async function removeWorkspace(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
}

/** `npm pack` of the repository into `dir` (runs `prepare`, which builds dist); returns the tarball's path and file list. */
export async function pack(dir: string): Promise<{ tarball: string; files: string[] }> {
  const output = await runOk(NPM, ['pack', '--json', '--pack-destination', dir], ROOT)
  // `prepare`'s own output comes first; the JSON array is the rest.
  const json = output.slice(output.indexOf('[\n'))
  const [info] = JSON.parse(json.slice(0, json.lastIndexOf(']') + 1)) as [{ filename: string; files: { path: string }[] }]
  return { tarball: join(dir, info.filename), files: info.files.map((file) => file.path) }
}

interface LockEntry {
  version: string
  resolved?: string
  integrity?: string
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  [key: string]: unknown
}

let registryUrl: Promise<string> | undefined

function registry(): Promise<string> {
  registryUrl ??= runOk(NPM, ['config', 'get', 'registry'], ROOT).then((out) => {
    const url = out.trim()
    return url.endsWith('/') ? url : `${url}/`
  })
  return registryUrl
}

interface RepositoryLock {
  packages: Record<string, LockEntry>
}

let repoLockFile: Promise<RepositoryLock> | undefined

function repositoryLock(): Promise<RepositoryLock> {
  repoLockFile ??= readFile(join(ROOT, 'package-lock.json'), 'utf8').then((text) => JSON.parse(text) as RepositoryLock)
  return repoLockFile
}

/** The lockfile entries of the package's dependencies, from the repository's lockfile, keyed as npm lays them out. */
async function dependencyLock(): Promise<Record<string, LockEntry>> {
  const repoLock = await repositoryLock()
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
  const base = await registry()
  const entries: Record<string, LockEntry> = {}
  const visit = (from: string, name: string): void => {
    const key = lookup(repoLock, from, name)
    if (key === undefined) throw new Error(`package-lock.json has no entry for ${name} (needed by ${from || 'the package'}): run npm install`)
    if (entries[key] !== undefined) return
    const { dev: _dev, peer: _peer, optional: _optional, devOptional: _devOptional, ...entry } = repoLock.packages[key]!
    const basename = name.slice(name.lastIndexOf('/') + 1)
    entries[key] = { ...entry, resolved: entry.resolved ?? `${base}${name}/-/${basename}-${entry.version}.tgz` }
    for (const dependency of Object.keys(entry.dependencies ?? {})) visit(key, dependency)
  }
  for (const name of Object.keys(manifest.dependencies ?? {})) visit('', name)
  return entries
}

/**
 * A consumer project in `dir`: `package.json` (ESM) depending on the tarball, installed with
 * npm; then `links` (package names) symlinked from the repository's node_modules.
 */
export async function consumerProject(dir: string, tarball: string, links: readonly string[]): Promise<string> {
  await mkdir(dir, { recursive: true })
  const name = `consumer-${parse(dir).name}`
  const spec = `file:${tarball}`
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module', dependencies: { [PACKAGE_NAME]: spec } }, null, 2))
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>
  const lock = {
    name,
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name, dependencies: { [PACKAGE_NAME]: spec } },
      [`node_modules/${PACKAGE_NAME}`]: {
        version: manifest['version'],
        resolved: spec,
        license: manifest['license'],
        dependencies: manifest['dependencies'],
        peerDependencies: manifest['peerDependencies'],
        peerDependenciesMeta: manifest['peerDependenciesMeta'],
        engines: manifest['engines'],
      },
      ...(await dependencyLock()),
    },
  }
  await writeFile(join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2))
  await runOk(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], dir)
  const repoLock = await repositoryLock()
  const linked = new Set<string>()
  const place = async (key: string): Promise<void> => {
    if (linked.has(key)) return
    linked.add(key)
    const name = key.slice('node_modules/'.length)
    const target = join(dir, 'node_modules', name)
    // A package the tarball's install put there already is the consumer's own copy: keep it.
    if (existsSync(target)) return
    await mkdir(dirname(target), { recursive: true })
    await symlink(join(REPO_MODULES, name), target, 'dir')
    await placeDependencies(key)
  }
  // The dependencies of the package at `key`: those nested in its own folder come with its
  // symlink; those npm hoisted to the top are linked at the top too, as an install would lay them.
  const placeDependencies = async (key: string): Promise<void> => {
    const entry = repoLock.packages[key]!
    for (const dependency of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const resolved = lookup(repoLock, key, dependency)
      if (resolved === undefined) continue // an optional dependency not installed
      if (resolved.includes('/node_modules/'))
        await placeNested(resolved) // inside an already linked folder
      else await place(resolved)
    }
  }
  const placeNested = async (key: string): Promise<void> => {
    if (linked.has(key)) return
    linked.add(key)
    await placeDependencies(key)
  }
  for (const link of links) {
    if (repoLock.packages[`node_modules/${link}`] === undefined) throw new Error(`${link} is not installed in the repository (run npm ci)`)
    await place(`node_modules/${link}`)
  }
  return dir
}

/** Node's lookup in a lockfile: the requiring package's own node_modules first, then each enclosing one. */
function lookup(lock: RepositoryLock, from: string, name: string): string | undefined {
  for (let at = from; ; at = at.includes('/node_modules/') ? at.slice(0, at.lastIndexOf('/node_modules/')) : '') {
    const candidate = at === '' ? `node_modules/${name}` : `${at}/node_modules/${name}`
    if (lock.packages[candidate] !== undefined) return candidate
    if (at === '') return undefined
  }
}

/** The compiler options every consumer check uses: strict, library files checked, only @types/node global. */
export const CONSUMER_COMPILER_OPTIONS = {
  strict: true,
  skipLibCheck: false,
  noEmit: true,
  target: 'ES2022',
  lib: ['ES2023'],
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  types: ['node'],
  // The linked packages stay where npm would have put them (their own folders hold no node_modules of their hoisted dependencies).
  preserveSymlinks: true,
} as const

/** At most this many compilers at a time (each is one CPU-bound process). */
const COMPILERS = 2
let compiling = 0
const waiting: (() => void)[] = []

async function slot<T>(work: () => Promise<T>): Promise<T> {
  if (compiling >= COMPILERS) await new Promise<void>((resolve) => waiting.push(resolve))
  else compiling++
  try {
    return await work()
  } finally {
    const next = waiting.shift()
    if (next === undefined) compiling--
    else next()
  }
}

/** Write `tsconfig.<name>.json` in `dir` for `files`, and run the repository's TypeScript on it. */
export async function typecheck(dir: string, name: string, files: readonly string[]): Promise<RunResult> {
  const config = `tsconfig.${name}.json`
  await writeFile(join(dir, config), JSON.stringify({ compilerOptions: CONSUMER_COMPILER_OPTIONS, files }, null, 2))
  return slot(() => run(process.execPath, [TSC, '-p', config, '--pretty', 'false'], dir))
}

/** A fenced code block of a Markdown text: its language tag (`''` for none), the line its code starts on, its code. */
export interface CodeBlock {
  readonly language: string
  readonly line: number
  readonly code: string
}

/** Every fenced code block of a Markdown text, in order. */
export function codeBlocks(markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const fence = /^\s*```(\S*)\s*$/.exec(lines[i]!)
    if (fence === null) continue
    const start = i + 1
    let end = start
    while (end < lines.length && lines[end]!.trim() !== '```') end++
    blocks.push({ language: fence[1]!, line: start + 1, code: lines.slice(start, end).join('\n') })
    i = end
  }
  return blocks
}

/** Each ```ts block of a Markdown text, with the line its code starts on. */
export function tsBlocks(markdown: string): CodeBlock[] {
  return codeBlocks(markdown).filter((block) => block.language === 'ts')
}
