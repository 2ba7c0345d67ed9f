import { randomUUID } from 'node:crypto'
import { createClient } from 'redis'
import type { InvalidationBus, InvalidationGap, InvalidationListener, InvalidationMessage } from '../../src/bus.js'
import { REDIS_URL } from '../helpers/services.js'

/** Poll `condition` every 10 ms; rejects with `what` when it is not true within `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A listener that records what it gets. */
export interface Recorder extends InvalidationListener {
  readonly messages: InvalidationMessage[]
  readonly gaps: InvalidationGap[]
}

/** Subscribe a {@link Recorder} to `bus`. */
export function record(bus: InvalidationBus): Recorder {
  const messages: InvalidationMessage[] = []
  const gaps: InvalidationGap[] = []
  const recorder: Recorder = { messages, gaps, onMessage: (m) => messages.push(m), onGap: (g) => gaps.push(g) }
  bus.subscribe(recorder)
  return recorder
}

/** A channel no other test uses. */
export function uniqueChannel(): string {
  return `csm-test:bus:${randomUUID()}`
}

/** A plain Redis client for the test's own commands (raw PUBLISH, CLIENT LIST, CLIENT KILL); patient, as a busy machine can be slow to connect. */
export async function adminClient(): Promise<ReturnType<typeof createClient>> {
  const client = createClient({ url: REDIS_URL, socket: { reconnectStrategy: (retries) => (retries < 5 ? 100 : false), connectTimeout: 10_000 } })
  client.on('error', () => {})
  await client.connect()
  return client
}

/** The Redis ids of the connections a bus of `origin` opened (their names carry the origin), by role. */
export async function busConnections(admin: ReturnType<typeof createClient>, origin: string): Promise<{ pub: string[]; sub: string[] }> {
  const list = await admin.sendCommand(['CLIENT', 'LIST'])
  const found = { pub: [] as string[], sub: [] as string[] }
  for (const line of String(list).split('\n')) {
    const id = /(?:^| )id=(\d+)/.exec(line)?.[1]
    const name = /(?:^| )name=(\S*)/.exec(line)?.[1]
    if (id === undefined || name === undefined) continue
    if (name === `csm-bus:${origin}:pub`) found.pub.push(id)
    if (name === `csm-bus:${origin}:sub`) found.sub.push(id)
  }
  return found
}

/** Kill connections by Redis id; resolves to how many were killed. */
export async function killConnections(admin: ReturnType<typeof createClient>, ids: readonly string[]): Promise<number> {
  let killed = 0
  for (const id of ids) killed += Number(await admin.sendCommand(['CLIENT', 'KILL', 'ID', id]))
  return killed
}
