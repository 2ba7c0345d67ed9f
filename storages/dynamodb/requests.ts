/**
 * How `DynamoDBStorage` finishes a request that DynamoDB returns unfinished, and runs many at
 * once: internal to `caching-session-manager/storages/dynamodb`.
 *
 * @internal
 * @module
 */

/**
 * How {@link sendUntilProcessed} finishes one call: `attempts` sends in all, and between two
 * sends a random delay of up to `baseDelayMs * 2 ** attempt`, capped at `maxDelayMs` ("full jitter").
 */
export interface RetryOptions {
  /** Sends in all, the first included. Default 3. */
  attempts?: number
  /** Default 25. */
  baseDelayMs?: number
  /** Default 200. */
  maxDelayMs?: number
  /** How to wait; tests pass one that records the delay. Default a timer. */
  sleep?: (ms: number) => Promise<void>
}

/** Sends of one BatchWriteItem or BatchGetItem call, the first included, before what is left unprocessed fails. */
export const UNPROCESSED_SENDS = 3

/**
 * Send `requests` with `send`, which resolves to the requests left unprocessed, until none are
 * left or `attempts` sends were made, waiting a short jittered, doubling delay between sends
 * (how AWS asks callers to finish a `BatchWriteItem`). Resolves to what is still unprocessed
 * (empty when everything landed); a rejection of `send` is passed on, never retried.
 *
 * @internal Exported for its tests; not part of the storage's API.
 * @example
 * ```ts
 * const left = await sendUntilProcessed((requests) => writeAndReturnUnprocessed(requests), requests)
 * ```
 */
export async function sendUntilProcessed<T>(send: (requests: T[]) => Promise<T[]>, requests: readonly T[], options: RetryOptions = {}): Promise<T[]> {
  const { attempts = UNPROCESSED_SENDS, baseDelayMs = 25, maxDelayMs = 200, sleep: wait = sleep } = options
  let pending = [...requests]
  for (let attempt = 1; pending.length > 0; attempt++) {
    pending = await send(pending)
    if (pending.length === 0 || attempt >= attempts) break
    await wait(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt))
  }
  return pending
}

/** Run `work` on every item, at most `limit` at once; `work` must not reject. */
export async function eachLimit<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
