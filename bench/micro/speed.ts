/**
 * Micro bench child: `session.get` next to `Map.get`, and request resolution on a cache hit:
 * `manager.resolve`, the node middleware run to `next`, and express-session's middleware run
 * to `next` (both on fresh fake requests, as a server sees them).
 *
 * Argument: CPU milliseconds per measurement.
 */
import { do_not_optimize } from 'mitata'
import { MemoryStorage } from '../../storages/memory.js'
import { reportSection } from '../lib/section.js'
import { fakeRequest, FakeResponse } from '../lib/fake-http.js'
import { nsPerOp } from '../lib/measure.js'
import { expressSessionFixture, libraryManager, startLibrarySession } from './fixtures.js'

/** Nanoseconds per operation, by name. */
export interface SpeedResult {
  sessionGet: number
  mapGet: number
  resolve: number
  middleware: number
  expressSession: number
}

reportSection(async (): Promise<SpeedResult> => {
  const cpuMs = Number(process.argv[2] ?? 500)
  const manager = libraryManager(new MemoryStorage())
  const cookie = await startLibrarySession(manager)
  const res = new FakeResponse()
  const req = fakeRequest(cookie)
  const session = await manager.load(req, res)
  if (session.isNew || session.get('n') !== 1) throw new Error('the bench session did not resolve from the cache')

  const map = new Map<string, unknown>([
    ['n', 1],
    ['user', 'someone'],
  ])
  const sessionGet = await nsPerOp(() => do_not_optimize(session.get('n')), cpuMs)
  const mapGet = await nsPerOp(() => do_not_optimize(map.get('n')), cpuMs)

  const resolve = await nsPerOp(() => do_not_optimize(manager.resolve(fakeRequest(cookie), res)), cpuMs)
  const middleware = manager.middleware()
  const next = (): void => {}
  const middlewareNs = await nsPerOp(() => middleware(fakeRequest(cookie) as never, new FakeResponse() as never, next), cpuMs)

  const express = await expressSessionFixture()
  const expressSession = await nsPerOp(() => express.run(fakeRequest(express.cookie), new FakeResponse()), cpuMs)
  await manager.close()
  return { sessionGet, mapGet, resolve, middleware: middlewareNs, expressSession }
})
