// The request the identities read under a framework that knows the protocol better than the
// socket does (Koa's `app.proxy`, Fastify's `trustProxy`), so `secure: 'auto'` follows it.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { SessionRequest } from '../types.js'

/** What the framework exposes: Koa's `ctx` and Fastify's `request` both have a `protocol`. */
export interface ProtocolSource {
  readonly protocol: string
}

/**
 * Node's request as the identities see it, plus the framework's `protocol` (`'https'` behind
 * a TLS-terminating proxy the framework trusts). The protocol is read only when an identity
 * asks for it, that is when a cookie is written with `secure: 'auto'`, so a request that
 * writes no cookie never pays for the framework's header parsing.
 */
export class FrameworkRequest implements SessionRequest {
  readonly #raw: IncomingMessage
  readonly #source: ProtocolSource

  constructor(raw: IncomingMessage, source: ProtocolSource) {
    this.#raw = raw
    this.#source = source
  }

  get headers(): IncomingHttpHeaders {
    return this.#raw.headers
  }

  get url(): string | undefined {
    return this.#raw.url
  }

  get socket(): object | null {
    return this.#raw.socket
  }

  /** The framework's view of the protocol, e.g. `'https'` from a trusted `X-Forwarded-Proto`. */
  get protocol(): string {
    return this.#source.protocol
  }
}
