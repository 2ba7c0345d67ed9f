import { randomBytes } from 'node:crypto'
import type { Agent } from 'node:http'
import Keygrip from 'keygrip'
import { generateId } from '../../src/ids.js'
import { AckLedger } from './ack-ledger.js'
import { httpGet, SessionClient } from './session-client.js'

/** How often each kind of request is made, relative to the others. */
export interface WorkloadMix {
  read: number
  write: number
  newSession: number
  renew: number
  destroy: number
  hostile: number
}

/** The default mix: mostly reads and writes, some churn, some attacks. */
export const DEFAULT_MIX: WorkloadMix = { read: 45, write: 33, newSession: 5, renew: 5, destroy: 2, hostile: 10 }

/** What a workload counted. */
export interface WorkloadCounters {
  requests: number
  /** Requests answered as intended (2xx, or a hostile request answered with a fresh session). */
  ok: number
  acknowledgedWrites: number
  renews: number
  destroys: number
  hostile: number
  /** Failures by kind: `http 503 SESSION_STORAGE_UNAVAILABLE`, `network ECONNRESET`, `stale read`… */
  errors: Record<string, number>
}

interface Visitor {
  readonly client: SessionClient
  /** Last acknowledged value per key of the current session. */
  acknowledged: Map<string, number>
  busy: boolean
}

const KEYS = ['n', 'cart', 'views', 'step', 'theme']

/**
 * Visitors of the fixture server (test/process/fixtures/session-server.ts). Each visitor makes one request
 * at a time; every acknowledged write, renew and destroy goes to the {@link AckLedger}, and every
 * read is checked against what was acknowledged (a value older than the last acknowledged one is
 * counted as a `stale read`).
 */
export class Workload {
  readonly ledger = new AckLedger()
  readonly counters: WorkloadCounters = { requests: 0, ok: 0, acknowledgedWrites: 0, renews: 0, destroys: 0, hostile: 0, errors: {} }
  readonly #agent: Agent
  readonly #port: number
  readonly #visitors: Visitor[]
  readonly #mix: Array<[keyof WorkloadMix, number]>
  readonly #total: number
  readonly #signingKey: string
  #value = 0

  constructor(agent: Agent, port: number, visitors: number, options: { mix?: WorkloadMix; signingKey?: string } = {}) {
    this.#agent = agent
    this.#port = port
    this.#visitors = Array.from({ length: visitors }, () => ({ client: new SessionClient(agent, port), acknowledged: new Map(), busy: false }))
    this.#mix = Object.entries(options.mix ?? DEFAULT_MIX) as Array<[keyof WorkloadMix, number]>
    this.#total = this.#mix.reduce((sum, [, weight]) => sum + weight, 0)
    this.#signingKey = options.signingKey ?? 'fixture-server-signing-key-0123456789abcdef'
  }

  /** Visitors with no request in flight. */
  idle(): number {
    return this.#visitors.filter((visitor) => !visitor.busy).length
  }

  /** Make one request for a random idle visitor; resolves when answered. `false` when every visitor was busy. */
  async step(): Promise<boolean> {
    const start = Math.floor(Math.random() * this.#visitors.length)
    for (let i = 0; i < this.#visitors.length; i++) {
      const visitor = this.#visitors[(start + i) % this.#visitors.length]!
      if (visitor.busy) continue
      visitor.busy = true
      try {
        await this.#visit(visitor)
      } finally {
        visitor.busy = false
      }
      return true
    }
    return false
  }

  /** Run one visitor after another as fast as answers come, until `stop()` returns true. */
  async closedLoop(stop: () => boolean): Promise<void> {
    await Promise.all(
      this.#visitors.map(async (visitor) => {
        while (!stop()) {
          visitor.busy = true
          await this.#visit(visitor)
          visitor.busy = false
        }
      }),
    )
  }

  async #visit(visitor: Visitor): Promise<void> {
    const hasSession = visitor.client.jar.get('sid') !== undefined
    const kind = hasSession ? this.#pick() : 'newSession'
    try {
      switch (kind) {
        case 'read':
          return await this.#read(visitor)
        case 'write':
          return await this.#write(visitor)
        case 'newSession':
          visitor.client.jar.absorb(['sid=; expires=Thu, 01 Jan 1970 00:00:00 GMT', 'sid.sig=; expires=Thu, 01 Jan 1970 00:00:00 GMT'])
          visitor.acknowledged = new Map()
          return await this.#write(visitor)
        case 'renew':
          return await this.#renew(visitor)
        case 'destroy':
          return await this.#destroy(visitor)
        case 'hostile':
          return await this.#hostile(visitor)
      }
    } catch (error) {
      this.#error(`network ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
    }
  }

  #pick(): keyof WorkloadMix {
    let roll = Math.random() * this.#total
    for (const [kind, weight] of this.#mix) {
      roll -= weight
      if (roll < 0) return kind
    }
    return 'read'
  }

  async #read(visitor: Visitor): Promise<void> {
    this.counters.requests++
    const { status, answer } = await visitor.client.get('/read')
    if (status !== 200) return this.#error(`http ${status} ${answer.error ?? ''}`.trim())
    for (const [key, expected] of visitor.acknowledged) {
      const found = answer.data?.[key]
      if (typeof found !== 'number' || found < expected) return this.#error('stale read')
    }
    this.counters.ok++
  }

  async #write(visitor: Visitor): Promise<void> {
    this.counters.requests++
    const key = KEYS[Math.floor(Math.random() * KEYS.length)]!
    const value = ++this.#value
    const { status, answer } = await visitor.client.get(`/set?key=${key}&value=${value}`)
    if (status !== 200 || typeof answer.id !== 'string') return this.#error(`http ${status} ${answer.error ?? ''}`.trim())
    this.ledger.acknowledged(answer.id, key, value)
    visitor.acknowledged.set(key, value)
    this.counters.acknowledgedWrites++
    this.counters.ok++
  }

  async #renew(visitor: Visitor): Promise<void> {
    this.counters.requests++
    this.ledger.sending(this.#sessionId(visitor), 'renew')
    const { status, answer } = await visitor.client.get('/renew')
    if (status !== 200 || typeof answer.id !== 'string' || typeof answer.oldId !== 'string') return this.#error(`http ${status} ${answer.error ?? ''}`.trim())
    this.ledger.renewed(answer.oldId, answer.id)
    this.counters.renews++
    this.counters.ok++
  }

  async #destroy(visitor: Visitor): Promise<void> {
    this.counters.requests++
    this.ledger.sending(this.#sessionId(visitor), 'destroy')
    const { status, answer } = await visitor.client.get('/destroy')
    if (status !== 200 || typeof answer.id !== 'string') return this.#error(`http ${status} ${answer.error ?? ''}`.trim())
    this.ledger.destroyed(answer.id)
    visitor.acknowledged = new Map()
    this.counters.destroys++
    this.counters.ok++
  }

  // A request carrying a hostile credential, built from this visitor's real one where it helps.
  async #hostile(visitor: Visitor): Promise<void> {
    this.counters.requests++
    this.counters.hostile++
    const cookie = hostileCookie(this.#sessionId(visitor) || generateId(), this.#signingKey)
    const response = await httpGet(this.#agent, this.#port, '/read', { cookie })
    let isNew = false
    try {
      isNew = (JSON.parse(response.body) as { isNew?: boolean }).isNew === true
    } catch {
      // counted below
    }
    if (response.status !== 200 || !isNew) return this.#error(`hostile answered ${response.status}${isNew ? '' : ' without a fresh session'}`)
    this.counters.ok++
  }

  // The session id a visitor holds: the cookie value up to the version it may carry (`<id>.<version>`).
  #sessionId(visitor: Visitor): string {
    return (visitor.client.jar.get('sid') ?? '').split('.')[0]!
  }

  #error(kind: string): void {
    this.counters.errors[kind] = (this.counters.errors[kind] ?? 0) + 1
  }
}

/** A Cookie header that must open no session: forged, tampered, malformed or oversized. */
export function hostileCookie(realId: string, signingKey: string): string {
  const sign = (data: string, key = signingKey): string => new Keygrip([key], 'sha256').sign(data)
  const forged = generateId()
  const cases = [
    () => `sid=${forged}; sid.sig=${sign(`sid=${forged}`, 'an-attacker-key-of-at-least-32-chars!!')}`,
    () => `sid=${realId}`,
    () => `sid=${realId}; sid.sig=${sign(`sid=${forged}`)}`,
    () => `sid=${realId}; sid.sig=${sign(`other=${realId}`)}`,
    () => `sid=${realId.slice(0, -1)}; sid.sig=${sign(`sid=${realId.slice(0, -1)}`)}`,
    () => `sid=${realId.slice(0, -1)}${String.fromCharCode(realId.charCodeAt(42) + 1)}; sid.sig=${sign(`sid=${realId}`)}`,
    () => `sid=%${realId.charCodeAt(0).toString(16)}${realId.slice(1)}; sid.sig=${sign(`sid=${realId}`)}`,
    () => `xsid=${realId}; xsid.sig=${sign(`xsid=${realId}`)}`,
    () => `sid=${randomBytes(600).toString('base64')}`,
    () => `${'sid=x; '.repeat(500)}sid=${realId}; sid.sig=${sign(`sid=${realId}`)}`,
    () => `pad=${'x'.repeat(8000)}; sid=${forged}; sid.sig=${sign(`sid=${forged}`, 'z'.repeat(40))}`,
    () => `sid="${realId}'; sid.sig=${sign(`sid=${realId}`)}`,
  ]
  return cases[Math.floor(Math.random() * cases.length)]!()
}
