import { FakeResponse, fakeRequest as exchangeRequest, type FakeRequestInit } from './fake-exchange.js'
import type { SessionRequest } from '../../src/types.js'

export { FakeResponse }

/** A request for the core tests: like fake-exchange's, on host `localhost` unless told. */
export function fakeRequest(init: FakeRequestInit = {}): SessionRequest {
  return exchangeRequest({ host: 'localhost', ...init })
}
