import test from 'ava'
import { SessionError, type SessionErrorCode } from '../../src/errors.js'
import { createNodeMiddleware } from '../../src/middleware/node.js'
import { MemoryStorage } from '../../storages/memory.js'
import { FaultStorage } from '../helpers/storage-double.js'
import { FakeResponse, fakeRequest } from '../helpers/fake-http.js'
import { testManager, visit } from '../helpers/manager.js'
import type { IncomingMessage, ServerResponse } from 'node:http'

const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

test('error listeners read err.code without a cast: a failed write is SESSION_STORAGE_FAILED', async (t) => {
  const storage = new FaultStorage(new MemoryStorage())
  const manager = testManager({ storage, writeRetries: 0 })
  const codes: SessionErrorCode[] = []
  manager.on('error', (err) => codes.push(err.code))
  const { session } = await visit(manager)
  storage.down()
  await t.throwsAsync(session.set('a', 1), { instanceOf: SessionError })
  t.deepEqual(codes, ['SESSION_STORAGE_FAILED'])
  storage.up()
  await manager.close()
})

test('a request handler that rejects reaches the error event as SESSION_HANDLER_FAILED, its error the cause', async (t) => {
  const manager = testManager({ storage: new MemoryStorage() })
  const errors: SessionError[] = []
  manager.on('error', (err) => errors.push(err))
  const thrown = new Error('handler broke')
  const middleware = createNodeMiddleware(manager)
  const req = fakeRequest() as unknown as IncomingMessage
  middleware(req, new FakeResponse() as unknown as ServerResponse, () => Promise.reject(thrown))
  await settled()
  t.is(errors.length, 1)
  t.true(errors[0] instanceof SessionError)
  t.is(errors[0]?.code, 'SESSION_HANDLER_FAILED')
  t.is(errors[0]?.cause, thrown)
  t.true(errors[0]?.message.includes('handler broke'))
  await manager.close()
})

test('a SessionError emitted on error reaches listeners as it is', async (t) => {
  const manager = testManager({ storage: new MemoryStorage() })
  const seen: SessionError[] = []
  manager.on('error', (err) => seen.push(err))
  const error = new SessionError('SESSION_INVALID_RECORD', 'bad record')
  manager.emit('error', error)
  t.is(seen[0], error)
  await manager.close()
})
