import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const FIXTURE = fileURLToPath(new URL('../process/fixtures/session-server.ts', import.meta.url))
const STARTUP_LIMIT_MS = 30_000

/** A message the fixture server sends over IPC. */
export interface ServerMessage {
  readonly type: 'listening' | 'closing' | 'closed'
  readonly port?: number
  readonly stats?: Record<string, number>
  readonly unexpected?: readonly string[]
}

/** A fixture server (test/process/fixtures/session-server.ts, or another given to {@link forkServer}) running in a child process. */
export interface ChildServer {
  readonly port: number
  readonly child: ChildProcess
  /** Every IPC message received so far. */
  readonly messages: ServerMessage[]
  /** Its standard error so far. */
  stderr(): string
  /** Resolves with how it ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves with the first message of `type`. */
  next(type: ServerMessage['type']): Promise<ServerMessage>
  /** SIGKILL it if it still runs, and wait for the end. */
  kill(): Promise<void>
}

/**
 * Fork the fixture server with `env` added to this process's environment (and `nodeOptions`
 * such as `--expose-gc` given to node); resolves once it listens. The caller must end it (`kill()`, or SIGTERM and `await exited`).
 */
export function startFixtureServer(env: Record<string, string>, nodeOptions: readonly string[] = []): Promise<ChildServer> {
  return forkServer(FIXTURE, env, nodeOptions)
}

/**
 * Fork the server script at `fixture` (a path) the same way: it must report
 * `{ type: 'listening', port }` over IPC once it listens. The caller must end it.
 */
export async function forkServer(fixture: string, env: Record<string, string>, nodeOptions: readonly string[] = []): Promise<ChildServer> {
  const child = fork(fixture, [], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    execArgv: ['--import', 'tsx', ...nodeOptions],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const messages: ServerMessage[] = []
  const waiting = new Map<string, Array<(message: ServerMessage) => void>>()
  child.on('message', (raw) => {
    const message = raw as ServerMessage
    messages.push(message)
    for (const resolve of waiting.get(message.type) ?? []) resolve(message)
    waiting.delete(message.type)
  })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  const next = (type: ServerMessage['type']): Promise<ServerMessage> => {
    const seen = messages.find((message) => message.type === type)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve) => waiting.set(type, [...(waiting.get(type) ?? []), resolve]))
  }
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  const started = await Promise.race([
    next('listening'),
    exited.then(({ code }) => new Error(`the fixture server exited (${code}) before listening:\n${stderr}`)),
    new Promise<Error>((resolve) =>
      setTimeout(() => resolve(new Error(`the fixture server did not listen within ${STARTUP_LIMIT_MS} ms:\n${stderr}`)), STARTUP_LIMIT_MS).unref(),
    ),
  ])
  if (started instanceof Error) {
    await kill()
    throw started
  }
  return { port: started.port!, child, messages, stderr: () => stderr, exited, next, kill }
}
