import type { SessionResponse } from '../src/types.js'

/** The attributes of a cookie that stay the same on every line an identity writes. */
export interface FixedCookieAttributes {
  readonly path: string
  readonly domain: string | undefined
  readonly priority: 'low' | 'medium' | 'high' | undefined
  readonly sameSite: 'lax' | 'strict' | 'none' | false
  readonly httpOnly: boolean
  readonly partitioned: boolean
}

/**
 * Writes `Set-Cookie` lines for one identity's cookies: the attributes that never change are
 * joined once, so a line costs two concatenations and, for a new deadline, one date format.
 * Lines have the form and attribute order of the `cookies` package
 * (`name=value; path=/; expires=…; domain=…; priority=…; samesite=lax; secure; httponly; partitioned`).
 * Names and values are the identity's to check: ids, signatures and sealed values are tokens.
 * @internal
 */
export class SetCookieLines {
  /** Between the value and Expires. */
  readonly #head: string
  /** Between Expires and Secure: domain, priority, SameSite. */
  readonly #middle: string
  /** After Secure: HttpOnly, Partitioned. */
  readonly #tail: string
  /** The last deadline formatted, to the second, and its text. */
  #expiresSecond = Number.NaN
  #expiresText = ''

  constructor(attributes: FixedCookieAttributes) {
    this.#head = `; path=${attributes.path}`
    let middle = ''
    if (attributes.domain !== undefined) middle += `; domain=${attributes.domain}`
    if (attributes.priority !== undefined) middle += `; priority=${attributes.priority}`
    if (attributes.sameSite !== false) middle += `; samesite=${attributes.sameSite}`
    this.#middle = middle
    this.#tail = (attributes.httpOnly ? '; httponly' : '') + (attributes.partitioned ? '; partitioned' : '')
  }

  /**
   * The line setting `name` to `value`, with Expires at `expiresAt` (epoch ms; `undefined` for a
   * cookie without Expires) and Secure when `secure`. An empty value clears the cookie: Expires
   * is the epoch whatever `expiresAt` says.
   */
  line(name: string, value: string, expiresAt: number | undefined, secure: boolean): string {
    const expires = value === '' ? 0 : expiresAt
    let line = `${name}=${value}${this.#head}`
    if (expires !== undefined) line += `; expires=${this.#expires(expires)}`
    line += this.#middle
    if (secure) line += '; secure'
    return line + this.#tail
  }

  #expires(at: number): string {
    const second = Math.floor(at / 1000)
    if (second !== this.#expiresSecond) {
      this.#expiresText = new Date(second * 1000).toUTCString()
      this.#expiresSecond = second
    }
    return this.#expiresText
  }
}

/**
 * Put `lines` on `res` in place of any `Set-Cookie` line already there for the same cookie
 * names (`nameEqs`, each `"name="`); every other line stays, in order. One `setHeader` call.
 * @internal
 */
export function putSetCookie(res: SessionResponse, nameEqs: readonly string[], lines: readonly string[]): void {
  const current = res.getHeader('set-cookie')
  if (current === undefined) {
    res.setHeader('Set-Cookie', [...lines])
    return
  }
  const kept: string[] = []
  for (const line of typeof current === 'object' ? current : [String(current)]) {
    if (!nameEqs.some((nameEq) => line.startsWith(nameEq))) kept.push(line)
  }
  for (const line of lines) kept.push(line)
  res.setHeader('Set-Cookie', kept)
}
