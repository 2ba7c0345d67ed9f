// The module object, not named imports: its functions are looked up at each call, as Keygrip and
// cookie-signature do, so a process that instruments `crypto.createHmac` counts these calls too.
import crypto from 'node:crypto'
import Keygrip from 'keygrip'

/**
 * What a signed cookie identity signs and verifies with: the newest key signs, every key
 * verifies. A `Keygrip` is one as it is.
 */
export interface CookieSigner {
  /** The signature of `data` (`name=value`) with the newest key. */
  sign(data: string): string
  /** The index of the key, newest first, whose signature of `data` is `sig`; -1 if none. */
  index(data: string, sig: string): number
}

/** Characters of an HMAC-SHA256 in base64url without padding, as Keygrip writes it. */
const SIGNATURE_LENGTH = 43

/**
 * HMAC-SHA256 signatures in base64url, as `new Keygrip(keys, 'sha256')` makes them, verified
 * with one HMAC per key tried (newest first, stopping at the first that matches) and
 * `crypto.timingSafeEqual`. Keygrip's own check costs three HMACs per key (its constant-time
 * compare hashes both sides again with a random key); a signature of the wrong length costs none.
 */
class HmacSigner implements CookieSigner {
  readonly #keys: readonly string[]

  constructor(keys: readonly string[]) {
    this.#keys = [...keys]
  }

  sign(data: string): string {
    return this.#digest(data, this.#keys[0]!).toString('latin1')
  }

  index(data: string, sig: string): number {
    // UTF-8, so a character beyond ASCII makes the buffer longer instead of aliasing an ASCII byte.
    const given = Buffer.from(sig)
    if (given.length !== SIGNATURE_LENGTH) return -1
    for (let i = 0; i < this.#keys.length; i++) {
      if (crypto.timingSafeEqual(given, this.#digest(data, this.#keys[i]!))) return i
    }
    return -1
  }

  /** The base64url text of the HMAC, as bytes (43 of them). */
  #digest(data: string, key: string): Buffer {
    return Buffer.from(crypto.createHmac('sha256', key).update(data).digest('base64url'), 'latin1')
  }
}

/** The signer of `keys` as `CookieIdentityOptions.keys` takes them: secret strings, newest first, or a Keygrip. */
export function createSigner(keys: readonly string[] | Keygrip): CookieSigner {
  return keys instanceof Keygrip ? keys : new HmacSigner(keys)
}
