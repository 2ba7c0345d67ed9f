/** What every example server shares: its signing key and its graceful shutdown. */
import { randomBytes } from 'node:crypto'
import type { Server } from 'node:http'

/**
 * The cookie signing key from SESSION_KEY, or a random one (with a warning) so the example runs
 * out of the box; with a random key cookies stop working when the server restarts.
 */
export function signingKey(): string {
  const key = process.env['SESSION_KEY']
  if (key !== undefined) return key
  console.warn('SESSION_KEY is not set: using a random key, so cookies stop working when the server restarts')
  return randomBytes(32).toString('base64url')
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
