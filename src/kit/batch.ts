import type { BatchOutcome, StorageOperation, WriteConflict } from './contract.js'
import { toError } from './errors.js'

/**
 * One batch of operations and their outcomes while a backend applies it, with the rule every
 * storage keeps: once an operation fails, the later operations of the same session fail with
 * the same error without being applied (they were meant to apply after it); once one conflicts
 * (its `ifVersion` did not match), the later ones of its session report `'conflict'` without
 * being applied. Operations of other sessions are not affected.
 *
 * An operation is pending until the backend settles it with {@link Batch.done} or
 * {@link Batch.fail}; {@link Batch.entries} and {@link Batch.rounds} list only pending ones.
 *
 * @example
 * ```ts
 * const batch = new Batch(operations)
 * for (const [index, op] of batch.entries()) {
 *   try {
 *     batch.done(index, apply(op))
 *   } catch (err) {
 *     batch.fail(index, err) // and the later operations of op.id
 *   }
 * }
 * return batch.outcomes
 * ```
 */
export class Batch {
  /** The operations, in the order given. */
  readonly operations: readonly StorageOperation[]
  /** One outcome per operation; `false` until settled. */
  readonly outcomes: BatchOutcome[]
  readonly #settled: boolean[]
  /** Per session, the indices of its operations in array order. */
  readonly #bySession = new Map<unknown, number[]>()
  #pending: number

  constructor(operations: readonly StorageOperation[]) {
    this.operations = operations
    this.outcomes = operations.map(() => false)
    this.#settled = operations.map(() => false)
    this.#pending = operations.length
    operations.forEach((op, index) => {
      const session = typeof op === 'object' && op !== null ? op.id : Symbol('not an operation')
      const indices = this.#bySession.get(session)
      if (indices === undefined) this.#bySession.set(session, [index])
      else indices.push(index)
    })
  }

  /** How many operations are not settled yet. */
  get pendingCount(): number {
    return this.#pending
  }

  /** Whether operation `index` is still to be applied. */
  isPending(index: number): boolean {
    return this.#settled[index] === false
  }

  /** The pending operations with their indices, in array order; an operation failed meanwhile is skipped. */
  *entries(): Generator<[number, StorageOperation]> {
    for (let index = 0; index < this.operations.length; index++) if (this.#settled[index] === false) yield [index, this.operations[index]!]
  }

  /**
   * The pending operations in rounds, for backends that cannot apply two operations of one
   * session in one statement: round k holds the k-th pending operation of every session (with
   * its index), so running the rounds in order keeps each session's order. Check
   * {@link Batch.isPending} before applying one: an earlier round may have failed its session.
   */
  rounds(): Array<Array<[number, StorageOperation]>> {
    return batchRounds(this.operations, (index) => this.#settled[index] === false)
  }

  /**
   * Operation `index` was applied (`true`), found no live record it needed (`false`), or
   * conflicted (`'conflict'`: nothing written). A conflict settles the later pending operations
   * of its session as conflicts too, unapplied.
   */
  done(index: number, outcome: boolean | WriteConflict): void {
    if (outcome === 'conflict' && this.#settled[index] === false) this.#settleFrom(index, outcome)
    else this.#settle(index, outcome)
  }

  /** Operation `index` failed with `error`; so do the later pending operations of its session. Returns the error. */
  fail(index: number, error: unknown): Error {
    const failure = toError(error)
    this.#settleFrom(index, failure)
    return failure
  }

  /** Settle `index` and the later pending operations of its session with `outcome`. */
  #settleFrom(index: number, outcome: WriteConflict | Error): void {
    const op = this.operations[index]
    const session = typeof op === 'object' && op !== null ? op.id : undefined
    for (const later of this.#bySession.get(session) ?? [index]) if (later > index) this.#settle(later, outcome)
    this.#settle(index, outcome)
  }

  #settle(index: number, outcome: BatchOutcome): void {
    if (this.#settled[index] !== false) return
    this.#settled[index] = true
    this.outcomes[index] = outcome
    this.#pending--
  }

  /** Every pending operation fails with `error` (the backend could not be reached). */
  failAll(error: unknown): void {
    const failure = toError(error)
    for (const [index] of this.entries()) this.fail(index, failure)
  }

  /**
   * Apply the pending operations one at a time, in array order, with `apply` (which resolves
   * whether it applied or `'conflict'`, and throws or rejects when it failed).
   */
  async applyEach(apply: (op: StorageOperation, index: number) => boolean | WriteConflict | Promise<boolean | WriteConflict>): Promise<void> {
    for (const [index, op] of this.entries()) {
      try {
        this.done(index, await apply(op, index))
      } catch (err) {
        this.fail(index, err)
      }
    }
  }

  /** {@link Batch.applyEach} for a synchronous `apply` (one that stages writes in memory). */
  applyEachSync(apply: (op: StorageOperation, index: number) => boolean | WriteConflict): void {
    for (const [index, op] of this.entries()) {
      try {
        this.done(index, apply(op, index))
      } catch (err) {
        this.fail(index, err)
      }
    }
  }
}

/**
 * Split operations into rounds: round k holds the k-th operation of every session (with its
 * index in `operations`), so each session appears at most once per round and running the
 * rounds in order keeps each session's order. `include` leaves operations out.
 *
 * @example
 * ```ts
 * batchRounds([a1, b1, a2]) // [[[0, a1], [1, b1]], [[2, a2]]]
 * ```
 */
export function batchRounds(
  operations: readonly StorageOperation[],
  include: (index: number) => boolean = () => true,
): Array<Array<[number, StorageOperation]>> {
  const seen = new Map<string, number>()
  const result: Array<Array<[number, StorageOperation]>> = []
  operations.forEach((op, index) => {
    if (!include(index)) return
    const round = seen.get(op.id) ?? 0
    seen.set(op.id, round + 1)
    ;(result[round] ??= []).push([index, op])
  })
  return result
}

/**
 * Split `items` into chunks, in order, for backends whose statements or requests are bounded:
 * at most `maxItems` items per chunk (rows per statement, DynamoDB's 25 writes per request),
 * and sizes (`sizeOf`, in bytes) adding up to at most `maxBytes` (a packet or request size). An
 * item larger than `maxBytes` is a chunk of its own.
 *
 * @example
 * ```ts
 * chunks(['a', 'bb', 'ccc', 'd'], 3, 4, (text) => text.length) // [['a', 'bb'], ['ccc', 'd']]
 * ```
 */
export function chunks<T>(items: readonly T[], maxItems: number, maxBytes = Infinity, sizeOf: (item: T) => number = () => 0): T[][] {
  const result: T[][] = []
  let current: T[] = []
  let bytes = 0
  for (const item of items) {
    const size = sizeOf(item)
    if (current.length > 0 && (current.length >= maxItems || bytes + size > maxBytes)) {
      result.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += size
  }
  if (current.length > 0) result.push(current)
  return result
}
