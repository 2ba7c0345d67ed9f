import type { SessionResponse } from './types.js'

/**
 * What a response that issues a header token needs: no cache, shared or private, may keep it
 * (the token is the whole credential).
 */
export const TOKEN_CACHE_CONTROL: CacheRule = { add: ['no-store'], enough: ['no-store'], value: 'no-store' }

/**
 * What a response that sets a session cookie needs (OWASP's advice): no shared cache may keep
 * it, or its Set-Cookie would be served to everyone who gets the cached copy (`private`), and no
 * cache may serve the Set-Cookie line again (`no-cache="Set-Cookie"`). A response already
 * `no-store` or `private` is left as it is.
 */
export const COOKIE_CACHE_CONTROL: CacheRule = {
  add: ['private', 'no-cache="Set-Cookie"'],
  enough: ['no-store', 'private'],
  value: 'private, no-cache="Set-Cookie"',
}

/** Directives a response must carry, and those of which any one already keeps it out of the caches that matter. */
export interface CacheRule {
  readonly add: readonly string[]
  readonly enough: readonly string[]
  /** `add` joined as one header value, when the response has no Cache-Control yet. Default: joined on each call. */
  readonly value?: string
}

/**
 * Make `res` uncacheable by `rule` without weakening what the application set: no Cache-Control
 * yet → the rule's directives; one that already carries an `enough` directive → unchanged;
 * otherwise the rule's directives are appended to the application's (and a `public`, which
 * contradicts them, is dropped). A Cache-Control the application sets after this call replaces
 * it, as any later setHeader does.
 */
export function preventCaching(res: SessionResponse, rule: CacheRule): void {
  if (res.headersSent) return
  const current = res.getHeader('cache-control')
  // The common case (no Cache-Control yet, or the one this rule wrote): no parsing, no new string.
  const value = rule.value ?? rule.add.join(', ')
  if (current === undefined) {
    res.setHeader('Cache-Control', value)
    return
  }
  if (current === value) return
  const text = current === undefined ? '' : Array.isArray(current) ? current.join(', ') : String(current)
  const kept: string[] = []
  for (const part of text.split(',')) {
    const directive = part.trim()
    if (directive === '') continue
    const name = directive.split('=', 1)[0]!.trim().toLowerCase()
    // `private="Set-Cookie"` keeps only the named fields out of shared caches: not enough.
    if (rule.enough.includes(name) && !directive.includes('=')) return
    if (name !== 'public') kept.push(directive)
  }
  res.setHeader('Cache-Control', [...kept, ...rule.add].join(', '))
}
