/**
 * node:http + caching-session-manager, as its README shows it: `manager.middleware()` with a
 * signed CookieIdentity. The storage is the caller's (memory or LevelDB), or none with the
 * caller's identities (a sealed cookie).
 */
import { createServer, type ServerResponse } from 'node:http'
import { CookieIdentity } from '../../../identities/cookie.js'
import type { RequestWithSession } from '../../../src/middleware/node.js'
import { SessionManager } from '../../../src/session-manager.js'
import type { Identity, Storage } from '../../../src/types.js'
import { KEY, listen, ROUTES, SECRET } from './common.js'

interface BenchData {
  n: number
}

/** Stats route: not measured, read once after the run to show reads were cache hits. */
export const STATS_ROUTE = '/__stats'

/** What the server runs on: a storage behind a signed cookie, or identities that need none. */
export type LibrarySetup = { storage: Storage } | { identities: Identity[] }

/** Start the server on `setup`; closes the manager (flushing writes) when the parent goes away. */
export function serveLibrary(setup: LibrarySetup, onClose: () => Promise<void> = () => Promise.resolve()): void {
  const options = 'storage' in setup ? { storage: setup.storage, identities: [new CookieIdentity({ keys: [SECRET] })] } : setup
  const manager = new SessionManager<BenchData>(options)
  const sessions = manager.middleware()
  let counter = 0

  const server = createServer((req: RequestWithSession<BenchData>, res) => {
    sessions(req, res, (err) => {
      res.setHeader('content-type', 'text/plain')
      if (err !== undefined) return fail(res, err)
      const session = req.session!
      switch (req.url) {
        case ROUTES.read:
          res.end(String(session.get(KEY)))
          return
        case ROUTES.write: {
          const value = ++counter
          session.set(KEY, value).then(
            () => res.end(String(value)),
            (error: unknown) => fail(res, error),
          )
          return
        }
        case ROUTES.fresh:
          res.end(String(session.get(KEY) ?? 'none'))
          return
        case STATS_ROUTE:
          res.end(JSON.stringify(manager.stats()))
          return
        default:
          res.statusCode = 404
          res.end()
      }
    })
  })

  listen(server, () => manager.close().then(onClose))
}

function fail(res: ServerResponse, err: unknown): void {
  res.statusCode = (err as { status?: number }).status ?? 500
  res.end(err instanceof Error ? err.message : String(err))
}
