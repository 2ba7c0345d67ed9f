import test from 'ava'
import { KeyedLock } from '../../src/kit/index.js'

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

test('work on one id runs in arrival order; other ids do not wait', async (t) => {
  const lock = new KeyedLock()
  const order: string[] = []
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  const first = lock.run(['a'], async () => {
    await held
    order.push('a1')
  })
  const second = lock.run(['a'], async () => {
    order.push('a2')
  })
  const other = lock.run(['b'], async () => {
    order.push('b')
  })
  await other
  await tick()
  t.deepEqual(order, ['b'])
  release()
  await Promise.all([first, second])
  t.deepEqual(order, ['b', 'a1', 'a2'])
})

test('runAlone waits for everything before it, and everything after waits for it; a failure releases the lock', async (t) => {
  const lock = new KeyedLock()
  const order: string[] = []
  const before = lock.run(['a'], async () => {
    await tick()
    order.push('before')
  })
  const alone = lock.runAlone(async () => {
    order.push('alone')
    throw new Error('failed')
  })
  const after = lock.run(['b'], async () => {
    order.push('after')
  })
  await before
  await t.throwsAsync(alone, { message: 'failed' })
  await after
  t.deepEqual(order, ['before', 'alone', 'after'])
})
