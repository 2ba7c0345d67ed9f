import test from 'ava'
import {
  booleanOption,
  clockOption,
  functionOption,
  knownOptionsCheck,
  nonNegativeNumberOption,
  optionNames,
  optionsObject,
  positiveIntegerOption,
  stringOption,
} from '../../src/kit/index.js'
import { editDistance, nearestName } from '../../src/kit/nearest.js'

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

interface ExampleOptions {
  cacheLimit?: number
  maxAge?: number
  now?: () => number
}

test('optionNames lists the names of an options type, each once, frozen', (t) => {
  const names = optionNames<ExampleOptions>({ cacheLimit: true, maxAge: true, now: true })
  t.deepEqual(names, ['cacheLimit', 'maxAge', 'now'])
  t.true(Object.isFrozen(names))
})

// Never called: the typecheck fails unless each marked line fails to compile.
export function optionNamesFollowTheInterface(): void {
  // @ts-expect-error a name left out
  optionNames<ExampleOptions>({ cacheLimit: true, maxAge: true })
  // @ts-expect-error a name the interface does not have
  optionNames<ExampleOptions>({ cacheLimit: true, maxAge: true, now: true, colour: true })
}

test('knownOptionsCheck: known keys pass, the first unknown one is refused with the nearest name', (t) => {
  const known = ['cacheLimit', 'maxAge', 'now']
  t.notThrows(() => knownOptionsCheck({ cacheLimit: 1, maxAge: undefined }, 'X', known))
  t.notThrows(() => knownOptionsCheck({}, 'X', known))
  t.throws(() => knownOptionsCheck({ maxAge: 1, cacheLimt: 1, colour: 1 }, 'X', known), {
    instanceOf: TypeError,
    message: 'X option "cacheLimt" is not known: did you mean "cacheLimit"?',
  })
  t.throws(() => knownOptionsCheck({ colour: 1 }, 'X', known), {
    instanceOf: TypeError,
    message: 'X option "colour" is not known; the known options are "cacheLimit", "maxAge", "now"',
  })
  t.throws(() => knownOptionsCheck({ anything: 1 }, 'X', []), { message: /^X option "anything" is not known/ })
})

test('editDistance counts insertions, deletions, substitutions and neighbour swaps; stops past the limit', (t) => {
  t.is(editDistance('cachelimit', 'cachelimit', 3), 0)
  t.is(editDistance('cachelimt', 'cachelimit', 3), 1)
  t.is(editDistance('cachelimitt', 'cachelimit', 3), 1)
  t.is(editDistance('cachelinit', 'cachelimit', 3), 1)
  t.is(editDistance('cahcelimit', 'cachelimit', 3), 1)
  t.is(editDistance('kitten', 'sitting', 5), 3)
  t.is(editDistance('', 'abc', 5), 3)
  t.is(editDistance('abcdef', 'uvwxyz', 2), 3, 'over the limit: limit + 1')
  t.is(editDistance('a', 'a'.repeat(100), 2), 3)
})

test('nearestName: case-insensitive, bounded by the length of the name, first of equals wins', (t) => {
  t.is(nearestName('cacheLimt', ['maxAge', 'cacheLimit']), 'cacheLimit')
  t.is(nearestName('CACHELIMIT', ['cacheLimit']), 'cacheLimit')
  t.is(nearestName('maxage', ['maxAges', 'maxAge']), 'maxAge', 'an exact match (ignoring case) beats a nearer-listed one')
  t.is(nearestName('tl', ['ttl', 'now']), 'ttl')
  t.is(nearestName('foo', ['now', 'ttl']), undefined, 'two edits are too many for three letters')
  t.is(nearestName('timout', ['timeout', 'name']), 'timeout')
  t.is(nearestName('storageTimeoutMs', ['storageTimeout']), 'storageTimeout')
  t.is(nearestName('colour', ['cacheLimit', 'maxAge']), undefined)
  t.is(nearestName('ab', ['ax', 'ay']), 'ax')
  t.is(nearestName('anything', []), undefined)
})
