import { randomFillSync } from 'node:crypto'

/** Bytes of randomness in a session id: 256 bits, twice OWASP's minimum. */
export const ID_BYTES = 32

/** Length of an id in base64url characters (no padding). */
export const ID_LENGTH = Math.ceil((ID_BYTES * 4) / 3)

// 256 bits leave 4 bits in the last character: only these 16 characters are canonical.
const ID_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/

// Filling one buffer for many ids amortizes the syscall; every id still gets fresh bytes.
const POOL_IDS = 128
const pool = Buffer.alloc(ID_BYTES * POOL_IDS)
let poolOffset = pool.length

/**
 * A new session id: 256 bits from the operating system's CSPRNG, base64url encoded.
 *
 * @example
 * ```ts
 * const id = generateId() // 'q3K0…' (43 characters)
 * ```
 */
export function generateId(): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const id = pool.toString('base64url', poolOffset, poolOffset + ID_BYTES)
  // Wipe what was handed out so a later read of the pool cannot reveal an issued id.
  pool.fill(0, poolOffset, poolOffset + ID_BYTES)
  poolOffset += ID_BYTES
  return id
}

/** Whether `value` has the exact shape of an id made by {@link generateId}. */
export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && value.length === ID_LENGTH && ID_PATTERN.test(value)
}
