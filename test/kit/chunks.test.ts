import test from 'ava'
import { chunks } from '../../src/kit/index.js'

test('chunks: bounded by count and by bytes, in order; an oversized item is a chunk of its own', (t) => {
  t.deepEqual(chunks([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]])
  t.deepEqual(
    chunks(['a', 'bb', 'ccc', 'd'], 3, 4, (text) => text.length),
    [
      ['a', 'bb'],
      ['ccc', 'd'],
    ],
  )
  t.deepEqual(
    chunks(['a', 'long text', 'b'], 10, 4, (text) => text.length),
    [['a'], ['long text'], ['b']],
  )
  t.deepEqual(chunks([], 3), [])
})
