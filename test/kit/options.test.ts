import test from 'ava'
import { booleanOption, clockOption, functionOption, nonNegativeNumberOption, optionsObject, positiveIntegerOption, stringOption } from '../../src/kit/index.js'

test('the now option: a function, Date.now by default; anything else is a TypeError naming it', (t) => {
  t.is(clockOption(undefined, 'X'), Date.now)
  const now = (): number => 5
  t.is(clockOption(now, 'X'), now)
  t.throws(() => clockOption(5, 'XStorage'), { instanceOf: TypeError, message: /^XStorage option "now" must be a function/ })
})

test('shared option checks name the storage and the option', (t) => {
  t.is(positiveIntegerOption(undefined, 'X', 'max', 7), 7)
  t.is(positiveIntegerOption(3, 'X', 'max', 7), 3)
  for (const bad of [0, -1, 1.5, '3', Number.NaN, 2 ** 60])
    t.throws(() => positiveIntegerOption(bad, 'X', 'max', 7), { instanceOf: TypeError, message: /X option "max"/ })
  t.is(nonNegativeNumberOption(0, 'X', 'interval', 1), 0)
  t.throws(() => nonNegativeNumberOption(-1, 'X', 'interval', 1, 'number of seconds'), { message: /"interval" must be a non-negative number of seconds/ })
  t.is(booleanOption(undefined, 'X', 'flag', true), true)
  t.throws(() => booleanOption('yes', 'X', 'flag', true), { message: /"flag" must be a boolean/ })
  t.throws(() => functionOption(1, 'X', 'onError', () => undefined), { message: /"onError" must be a function/ })
  t.is(stringOption(undefined, 'X', 'name', 'x'), 'x')
  t.throws(() => stringOption('', 'X', 'name', 'x'), { message: /"name" must be a non-empty string/ })
  t.deepEqual(optionsObject(undefined, 'X'), {})
  t.throws(() => optionsObject(null as never, 'X'), { instanceOf: TypeError, message: /X options must be an object/ })
})
