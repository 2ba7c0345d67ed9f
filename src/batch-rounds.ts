import type { StorageOperation } from './types.js'

/**
 * Split a batch into rounds for storages that cannot apply two operations of one id in a single
 * statement: round k holds the k-th operation of every id (with its index in the batch), so each
 * id appears at most once per round and running the rounds in order keeps each id's order.
 */
export function batchRounds(operations: readonly StorageOperation[]): Array<Array<[number, StorageOperation]>> {
  const seen = new Map<string, number>()
  const result: Array<Array<[number, StorageOperation]>> = []
  operations.forEach((op, index) => {
    const round = seen.get(op.id) ?? 0
    seen.set(op.id, round + 1)
    ;(result[round] ??= []).push([index, op])
  })
  return result
}
