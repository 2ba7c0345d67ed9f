import test from 'ava'
import { deadlineOf, isLive } from '../../src/kit/index.js'

test('a record is live before its idle deadline and dead at it', (t) => {
  t.true(isLive({ expiresAt: 2000 }, 1999))
  t.false(isLive({ expiresAt: 2000 }, 2000))
  t.false(isLive({ expiresAt: 2000 }, 5000))
})

test('the absolute deadline ends a record even when the idle one is later', (t) => {
  t.is(deadlineOf({ expiresAt: 2000, absoluteExpiresAt: 1500 }), 1500)
  t.false(isLive({ expiresAt: 2000, absoluteExpiresAt: 1500 }, 1500))
  t.true(isLive({ expiresAt: 2000, absoluteExpiresAt: 1500 }, 1499))
})

test('an absolute deadline after the idle one changes nothing', (t) => {
  t.is(deadlineOf({ expiresAt: 2000, absoluteExpiresAt: 9000 }), 2000)
})

test('no absolute deadline is undefined; null (a backend not mapped yet) means none too, never 0', (t) => {
  t.is(deadlineOf({ expiresAt: 2000 }), 2000)
  t.is(deadlineOf({ expiresAt: 2000, absoluteExpiresAt: undefined }), 2000)
  t.is(deadlineOf({ expiresAt: 2000, absoluteExpiresAt: null }), 2000)
  t.false(isLive({ expiresAt: 2000, absoluteExpiresAt: 0 }, 1), '0 is a deadline (the epoch), not "none"')
})
