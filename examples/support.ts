/** What every example server shares: its storage, its signing keys, opening the sessions, listening on PORT, and its graceful shutdown. */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Storage } from '../src/index.js'

/** The one variable every example reads its cookie signing keys from. */
export const KEYS_VARIABLE = 'SESSION_KEYS'
/** Shortest key CookieIdentity accepts. */
const MIN_KEY_LENGTH = 32
const GENERATE = `node -e "console.log(require('node:crypto').randomBytes(32).toString('base64url'))"`

/**
 * The cookie signing keys from `SESSION_KEYS`: a comma-separated list, newest first (the first
 * signs, all verify: add a new key in front to rotate). A key shorter than 32 characters stops
 * the example with a message naming it. Unset, the example still runs, with a warning, on
 * `fallback` (the demo's fixed development key, so its cookies survive restarts) or on a random
 * key (cookies stop working when the server restarts).
 */
export function signingKeys(fallback?: string): string[] {
  const keys = (process.env[KEYS_VARIABLE] ?? '')
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '')
  if (keys.length === 0) {
    const instead = fallback === undefined ? 'a random key (cookies stop working when the server restarts)' : 'a development key (never use it in production)'
    console.warn(`${KEYS_VARIABLE} is not set: cookies are signed with ${instead}. Make a key with: ${GENERATE}`)
    return [fallback ?? randomBytes(32).toString('base64url')]
  }
  const short = keys.findIndex((key) => key.length < MIN_KEY_LENGTH)
  if (short !== -1) {
    console.error(
      `${KEYS_VARIABLE}: key ${short + 1} of ${keys.length} has ${keys[short]!.length} characters; each key needs ${MIN_KEY_LENGTH} or more. Make one with: ${GENERATE}`,
    )
    process.exit(1)
  }
  return keys
}

/**
 * The storage of an example: a MySQL table when `MYSQL_URL` is set (`mysql://user:password@host:3306/database`;
 * the table is `SESSION_TABLE`, default `example_sessions`, created when missing), `fallback()` otherwise.
 */
export async function storageFromEnv(fallback: () => Storage): Promise<Storage> {
  const uri = process.env['MYSQL_URL'] ?? ''
  if (uri === '') return fallback()
  const { MySQLStorage } = await import('../storages/mysql.js')
  return new MySQLStorage({ uri, table: process.env['SESSION_TABLE'] ?? 'example_sessions' })
}

/** What {@link openSessions} needs of a manager: `SessionManager` fits. */
interface Opening {
  ready(): Promise<void>
  close(): Promise<void>
}

/**
 * `manager.ready()` before the server listens: when the storage cannot be opened (MySQL refuses
 * the connection, the table is missing, another process holds the LevelDB directory), one line
 * on stderr says why and the example exits 1, before it ever says it is listening.
 */
export async function openSessions(manager: Opening): Promise<void> {
  try {
    await manager.ready()
  } catch (err) {
    console.error(`cannot start: ${(err as Error).message}`)
    await manager.close().catch(() => undefined)
    process.exit(1)
  }
}

/** The port from `PORT` (default 3000; 0 picks a free one); anything else stops the example with a message. */
export function portFromEnv(): number {
  const text = process.env['PORT'] ?? '3000'
  const port = Number(text)
  if (text.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65_535) {
    console.error(`PORT must be a port number from 0 to 65535 (0 picks a free one), not ${JSON.stringify(text)}`)
    process.exit(1)
  }
  return port
}

/**
 * Listen on `port` of 127.0.0.1; resolves to the port taken. A port in use (or not allowed)
 * prints one line naming `PORT` and resolves to `undefined`: the caller closes what it opened
 * and exits 1.
 */
export async function listenOn(server: Server, port: number): Promise<number | undefined> {
  server.listen(port, '127.0.0.1')
  try {
    await once(server, 'listening')
  } catch (err) {
    reportListenFailure(port, err)
    return undefined
  }
  return (server.address() as AddressInfo).port
}

/** One line on stderr saying why `port` could not be listened on, naming `PORT`. */
export function reportListenFailure(port: number, err: unknown): void {
  const code = (err as NodeJS.ErrnoException | null)?.code
  if (code === 'EADDRINUSE') console.error(`port ${port} is in use: set PORT to another port (PORT=0 picks a free one)`)
  else if (code === 'EACCES') console.error(`port ${port} is not allowed for this user: set PORT to a port above 1023 (PORT=0 picks a free one)`)
  else console.error(`cannot listen on port ${port} (PORT): ${(err as Error).message}`)
}

/**
 * On SIGTERM or SIGINT: `stopServer` (stop taking requests, let those in progress finish), then
 * `closeSessions` (flush pending session writes), then exit 0 — or 1 if either failed.
 */
export function shutdownOnSignal(stopServer: () => Promise<unknown>, closeSessions: () => Promise<unknown>): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stopServer()
        .then(closeSessions)
        .then(
          () => process.exit(0),
          (err: unknown) => {
            console.error(err)
            process.exit(1)
          },
        )
    })
  }
}

/** Stop `server` taking connections; resolves when the requests in progress have finished. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()))
    server.closeIdleConnections()
  })
}
