import { createCipheriv, createDecipheriv, hkdfSync, randomFillSync } from 'node:crypto'
import { missingKeyCheck } from '../src/kit/options.js'

/** Shortest secret accepted: 32 characters, so a key is never weaker than the 256 bits it derives. */
export const MIN_SECRET_LENGTH = 32

/** The format byte every sealed value starts with. */
const FORMAT = 1
/** Bytes of the key id: which secret sealed a value, so opening picks its key without trying all. */
const KID_BYTES = 4
/** AES-GCM's standard 96-bit nonce, random per seal. */
const IV_BYTES = 12
const TAG_BYTES = 16
const HEADER_BYTES = 1 + KID_BYTES
/** Bytes a sealed value adds to its plaintext: format, key id, nonce and tag. */
export const SEAL_OVERHEAD = HEADER_BYTES + IV_BYTES + TAG_BYTES
const SALT = 'caching-session-manager sealed-cookie v1'
const BASE64URL = /^[A-Za-z0-9_-]+$/

// Nonces come from one buffer filled by the operating system's CSPRNG, refilled when used up.
const POOL_NONCES = 256
const pool = Buffer.alloc(IV_BYTES * POOL_NONCES)
let poolOffset = pool.length

interface Key {
  /** The key id as an unsigned 32-bit integer. */
  readonly kid: number
  readonly key: Buffer
  /** Additional authenticated data: the header (format and key id) and the context. */
  readonly aad: Buffer
}

/** Why a value did not open. */
export type OpenFailure = 'malformed' | 'unknown-key' | 'forged'

/** A value that opened: its plaintext and the position of the secret that sealed it (0 = newest). */
export interface Opened {
  readonly plaintext: Buffer
  readonly keyIndex: number
}

/**
 * Seals and opens short values with AES-256-GCM. Each secret is stretched with HKDF-SHA256
 * into an encryption key and a key id, both bound to `context` (an identity's name), so a
 * value sealed for one context never opens in another, even under the same secret. The first
 * secret seals; every secret opens. A sealed value is base64url of
 * `format(1) | key id(4) | nonce(12) | ciphertext | tag(16)`; the format byte, the key id and
 * the context are authenticated with it.
 * @internal
 */
export class Sealer {
  readonly #keys: readonly Key[]

  /** Throws a `TypeError` naming `option` unless `secrets` is a non-empty array of strings of at least {@link MIN_SECRET_LENGTH} characters. */
  constructor(secrets: unknown, context: string, option: string) {
    if (!Array.isArray(secrets) || secrets.length === 0) throw new TypeError(`${option} must be a non-empty array of secret strings, newest first`)
    const keys: Key[] = []
    for (const [index, secret] of (secrets as unknown[]).entries()) {
      missingKeyCheck(secret, index, option)
      if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) {
        throw new TypeError(`${option} must hold secrets of at least ${MIN_SECRET_LENGTH} characters each (AES-256 wants 256-bit keys)`)
      }
      const key = Buffer.from(hkdfSync('sha256', secret, SALT, `seal:${context}`, 32))
      const kid = Buffer.from(hkdfSync('sha256', secret, SALT, `key-id:${context}`, KID_BYTES)).readUInt32BE(0)
      const header = Buffer.alloc(HEADER_BYTES)
      header[0] = FORMAT
      header.writeUInt32BE(kid, 1)
      keys.push({ kid, key, aad: Buffer.concat([header, Buffer.from(context, 'utf8')]) })
    }
    this.#keys = keys
  }

  /** Characters of the sealed value of a plaintext of `bytes` bytes. */
  static sealedLength(bytes: number): number {
    return Math.ceil(((bytes + SEAL_OVERHEAD) * 4) / 3)
  }

  /** `plaintext` sealed with the newest secret, base64url without padding. */
  seal(plaintext: Buffer): string {
    const { key, aad } = this.#keys[0]!
    const out = Buffer.allocUnsafe(SEAL_OVERHEAD + plaintext.length)
    aad.copy(out, 0, 0, HEADER_BYTES)
    nonce(out, HEADER_BYTES)
    const iv = out.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
    cipher.setAAD(aad)
    let at = HEADER_BYTES + IV_BYTES
    at += cipher.update(plaintext).copy(out, at)
    at += cipher.final().copy(out, at)
    cipher.getAuthTag().copy(out, at)
    return out.toString('base64url')
  }

  /**
   * The plaintext of a sealed `value` and which secret sealed it, or why it does not open: not
   * canonical base64url or too short (`malformed`), sealed under no secret of this sealer
   * (`unknown-key`), or changed, truncated or sealed for another context (`forged`). Never throws.
   */
  open(value: string): Opened | OpenFailure {
    if (value.length < Sealer.sealedLength(0) || !BASE64URL.test(value)) return 'malformed'
    const bytes = Buffer.from(value, 'base64url')
    // Buffer decoding ignores the unused low bits of the last character: only the canonical spelling is accepted.
    if (bytes.length < SEAL_OVERHEAD || bytes[0] !== FORMAT || bytes.toString('base64url') !== value) return 'malformed'
    const kid = bytes.readUInt32BE(1)
    let failure: OpenFailure = 'unknown-key'
    for (let keyIndex = 0; keyIndex < this.#keys.length; keyIndex++) {
      const { kid: own, key, aad } = this.#keys[keyIndex]!
      if (own !== kid) continue
      failure = 'forged'
      const plaintext = decrypt(key, aad, bytes)
      if (plaintext !== undefined) return { plaintext, keyIndex }
    }
    return failure
  }
}

function decrypt(key: Buffer, aad: Buffer, bytes: Buffer): Buffer | undefined {
  const tagAt = bytes.length - TAG_BYTES
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES), { authTagLength: TAG_BYTES })
    decipher.setAAD(aad)
    decipher.setAuthTag(bytes.subarray(tagAt))
    const head = decipher.update(bytes.subarray(HEADER_BYTES + IV_BYTES, tagAt))
    const tail = decipher.final()
    return tail.length === 0 ? head : Buffer.concat([head, tail])
  } catch {
    return undefined
  }
}

/** Write a fresh random nonce into `out` at `at`; the pool's copy is wiped once handed out. */
function nonce(out: Buffer, at: number): void {
  if (poolOffset === pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  pool.copy(out, at, poolOffset, poolOffset + IV_BYTES)
  pool.fill(0, poolOffset, poolOffset + IV_BYTES)
  poolOffset += IV_BYTES
}
