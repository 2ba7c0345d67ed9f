/**
 * What every HTTP bench server shares: the routes, the signing secret, and how a server
 * reports its port to the parent and stops with it.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Routes every server answers. `/write` without a cookie starts a session and issues it. */
export const ROUTES = {
  /** Session-hit read: get one key. */
  read: '/read',
  /** Session-hit write: set one key (the response waits for the write to be acknowledged). */
  write: '/write',
  /** No cookie: a request that has no session. */
  fresh: '/new',
} as const

/** The key `/write` sets and `/read` reads. */
export const KEY = 'n'

/** Signing secret shared by every server (each library wants at least 32 characters). */
export const SECRET = 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz'

/** The first message a server child sends to its parent. */
export interface ServerMessage {
  type: 'ready'
  port: number
}

/** The parent asks a server for its CPU time with `{ type: 'cpu' }`; this is the answer. */
export interface CpuMessage {
  type: 'cpu'
  /** User + system CPU time of the server process so far, in microseconds. */
  micros: number
}

/** Longest a server may take to clean up once its parent is gone. */
const STOP_TIMEOUT_MS = 5000

/**
 * Tell the parent which port `server` listens on, and exit when the parent goes away (after
 * `stop`, bounded in time), so a crashed or interrupted bench never leaves a server behind.
 */
export function announce(server: Server, stop: () => Promise<void> = () => Promise.resolve()): void {
  const { port } = server.address() as AddressInfo
  const message: ServerMessage = { type: 'ready', port }
  if (process.send === undefined) {
    console.log(`listening on http://127.0.0.1:${port}`)
    return
  }
  process.once('disconnect', () => {
    setTimeout(() => process.exit(1), STOP_TIMEOUT_MS).unref()
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err)
        process.exit(1)
      },
    )
  })
  process.on('message', (request: { type?: unknown }) => {
    if (request.type !== 'cpu') return
    const usage = process.cpuUsage()
    const answer: CpuMessage = { type: 'cpu', micros: usage.user + usage.system }
    process.send!(answer)
  })
  process.send(message)
}

/** Listen on a random free port of 127.0.0.1, then {@link announce} it. */
export function listen(server: Server, stop?: () => Promise<void>): void {
  server.listen(0, '127.0.0.1', () => announce(server, stop))
}
