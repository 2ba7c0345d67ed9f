// Counting the HMACs an identity computes: `crypto.createHmac` is replaced by a counting wrapper
// while a count runs (Keygrip, cookie-signature and this library's signer look it up per call).
import crypto from 'node:crypto'

/** A running count of `crypto.createHmac` calls; `stop()` puts the original back. */
export interface HmacCount {
  readonly hmacs: number
  stop(): void
}

/** Start counting `crypto.createHmac` calls in this process. */
export function startHmacCount(): HmacCount {
  const original = crypto.createHmac
  let hmacs = 0
  crypto.createHmac = (...args: Parameters<typeof crypto.createHmac>) => {
    hmacs++
    return original(...args)
  }
  return {
    get hmacs() {
      return hmacs
    },
    stop: () => {
      crypto.createHmac = original
    },
  }
}

/** The `crypto.createHmac` calls made while `run` runs. */
export function hmacsDuring(run: () => void): number {
  const count = startHmacCount()
  try {
    run()
  } finally {
    count.stop()
  }
  return count.hmacs
}

/** What `run` resolves to and the `crypto.createHmac` calls made until it settled. */
export async function hmacsUntilSettled<T>(run: () => Promise<T>): Promise<{ answer: T; hmacs: number }> {
  const count = startHmacCount()
  try {
    return { answer: await run(), hmacs: count.hmacs }
  } finally {
    count.stop()
  }
}
