/**
 * Child processes of the bench: every server and every in-process section runs in its own
 * node process under the same loader (tsx), so no measurement shares a heap or a JIT with
 * another. Children are killed when the bench exits, also on error or Ctrl-C.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { SectionMessage } from './section.js'

/** The tsx loader, resolved from here so children work whatever the current directory. */
const TSX = import.meta.resolve('tsx')

const running = new Set<ChildProcess>()

function killAll(): void {
  for (const child of running) child.kill('SIGKILL')
  running.clear()
}

process.once('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll()
    process.exit(130)
  })
}

/** Options of {@link startChild}. */
export interface ChildOptions {
  /** Extra node flags (e.g. `--expose-gc`, `--cpu-prof`). */
  nodeArgs?: readonly string[]
  /** Arguments passed to the script. */
  args?: readonly string[]
  /** Kill the child if its first message takes longer than this. */
  readyTimeoutMs: number
}

/** A running child that sent its first message. */
export interface Child<M> {
  /** The first message the child sent (its port, or its result). */
  readonly message: M
  readonly process: ChildProcess
  /** Disconnect (the child cleans up and exits), then kill it if it is still there after `graceMs`. */
  stop(graceMs?: number): Promise<void>
}

/** Path of a bench script relative to the bench folder. */
export function benchScript(relative: string): string {
  return fileURLToPath(new URL(`../${relative}`, import.meta.url))
}

/**
 * Fork `script` under tsx and wait for its first IPC message. Rejects (and kills the child) if it
 * exits or times out first.
 */
export function startChild<M>(script: string, options: ChildOptions): Promise<Child<M>> {
  const child = fork(script, [...(options.args ?? [])], {
    execArgv: ['--import', TSX, ...(options.nodeArgs ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  running.add(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  void exited.then(() => running.delete(child))

  const stop = async (graceMs = 5000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    if (child.connected) child.disconnect()
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(timer)
  }

  return new Promise<Child<M>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${script} sent nothing within ${options.readyTimeoutMs} ms`))
    }, options.readyTimeoutMs)
    child.once('message', (message) => {
      clearTimeout(timer)
      resolve({ message: message as M, process: child, stop })
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${script} exited (${signal ?? `code ${code}`}) before reporting`))
    })
    child.once('error', (err) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    })
  })
}

/**
 * Run a section script to completion: it sends one `{ type: 'result', result }` message and
 * exits. Rejects on timeout, a crash, or an `{ type: 'error' }` message.
 */
export async function runSection<R>(script: string, options: ChildOptions): Promise<R> {
  const child = await startChild<SectionMessage<R>>(script, options)
  await child.stop()
  if (child.message.type === 'error') throw new Error(`${script} failed: ${child.message.error}`)
  return child.message.result
}
