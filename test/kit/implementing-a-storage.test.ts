import test from 'ava'
import { readFile } from 'node:fs/promises'
import { storageContract } from '../helpers/storage-contract.js'
import { MapStorage } from './fixtures/map-storage.js'

// The example of docs/implementing-a-storage.md is this fixture, and it passes the whole
// storage contract: adding a backend is one file plus this one line.
storageContract('map (the example backend)', { open: async () => new MapStorage(), openWithClock: async (now) => new MapStorage({ now }) })

test('the example in docs/implementing-a-storage.md is the tested fixture, word for word', async (t) => {
  const doc = await readFile(new URL('../../docs/implementing-a-storage.md', import.meta.url), 'utf8')
  const fixture = await readFile(new URL('./fixtures/map-storage.ts', import.meta.url), 'utf8')
  const example = /<!-- example: map-storage -->\n```ts\n([\s\S]*?)```/.exec(doc)?.[1]
  t.truthy(example, 'the document has the example block')
  t.is(example, fixture.replaceAll('../../../src/kit/index.js', 'caching-session-manager/kit'))
})
