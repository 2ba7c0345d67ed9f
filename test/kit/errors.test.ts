import test from 'ava'
import {
  SessionError,
  hasCode,
  invalidOperation,
  invalidRecord,
  messageOf,
  storageClosed,
  storageError,
  storageFailure,
  toError,
  unsupported,
} from '../../src/kit/index.js'

test('every storage error is a SessionError recognised by its code', (t) => {
  const cases: Array<[SessionError, string, number | undefined]> = [
    [storageClosed('level'), 'SESSION_CLOSED', 503],
    [storageError('level', 'read a session', new Error('disk')), 'SESSION_STORAGE_ERROR', 503],
    [storageFailure('the level storage cannot open "x"', new Error('locked')), 'SESSION_STORAGE_ERROR', 503],
    [invalidRecord('level', 'its data is not a JSON object', 'id'), 'SESSION_INVALID_RECORD', undefined],
    [invalidOperation('level', 'ids are printable ASCII'), 'SESSION_INVALID_OPERATION', undefined],
    [unsupported('express-store', 'clear', 'the store has no clear() method'), 'SESSION_INVALID_STATE', undefined],
  ]
  for (const [error, code, status] of cases) {
    t.true(error instanceof SessionError)
    t.true(hasCode(error, code as never), code)
    t.is(error.status, status)
  }
  t.false(hasCode(new Error('the level storage is closed'), 'SESSION_CLOSED'), 'a message alone is never recognised')
})

test('the closed error names the storage', (t) => {
  t.is(storageClosed('mysql').message, 'the mysql storage is closed')
})

test("a backend failure keeps the backend error as cause and says what failed, without the backend's text", (t) => {
  const cause = Object.assign(new Error('connect ECONNREFUSED db-host:3306'), { code: 'ECONNREFUSED' })
  const error = storageError('mysql', 'read a session', cause)
  t.is(error.message, 'the mysql storage could not read a session')
  t.is(error.cause, cause)
})

test('wrapping twice is harmless: a SessionError passes through', (t) => {
  const inner = invalidRecord('mysql', 'bad', 'id')
  t.is(storageError('mysql', 'read a session', inner), inner)
  const wrapped = storageError('mysql', 'read a session', new Error('x'))
  t.is(storageError('mysql', 'write sessions', wrapped), wrapped)
})

test('toError and messageOf take anything thrown', (t) => {
  t.is(toError('text').message, 'text')
  const error = new Error('kept')
  t.is(toError(error), error)
  t.is(messageOf(42), '42')
  t.is(messageOf(new TypeError()), 'TypeError')
})
