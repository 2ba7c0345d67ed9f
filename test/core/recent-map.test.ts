import test from 'ava'
import { RecentMap } from '../../src/recent-map.js'

test('always holds the max most recently used entries, and at most 2 × max', (t) => {
  for (const max of [1, 2, 3, 10, 11]) {
    const map = new RecentMap<number, string>(max)
    for (let i = 0; i < 5 * max; i++) {
      map.set(i, `v${i}`)
      t.true(map.size <= 2 * max, `max ${max}: ${map.size} held after ${i + 1} sets`)
      for (let back = 0; back < max && back <= i; back++) t.is(map.get(i - back), `v${i - back}`)
    }
  }
})

test('a hit keeps an entry among the most recently used', (t) => {
  const map = new RecentMap<string, number>(4)
  map.set('hot', 0)
  for (let i = 0; i < 1000; i++) {
    map.set(`cold${i}`, i)
    t.is(map.get('hot'), 0)
  }
  t.true(map.size <= 8)
})

test('set replaces the value of a held key without growing', (t) => {
  const map = new RecentMap<string, number>(3)
  map.set('a', 1)
  map.set('b', 2)
  map.set('a', 3)
  t.is(map.get('a'), 3)
  t.is(map.size, 2)
  for (let i = 0; i < 2; i++) map.set(`x${i}`, i)
  // 'a' and 'b' are in the old generation now; setting 'a' moves it to the young one.
  map.set('a', 4)
  t.is(map.get('a'), 4)
  t.is(map.get('b'), 2)
  t.true(map.size <= 6)
})

test('entries never set are absent', (t) => {
  const map = new RecentMap<string, number>(2)
  t.is(map.get('missing'), undefined)
  map.set('a', 1)
  t.is(map.get('missing'), undefined)
})

test('max must be a positive integer', (t) => {
  for (const max of [0, -1, 1.5, Number.NaN]) t.throws(() => new RecentMap(max), { instanceOf: TypeError })
})
