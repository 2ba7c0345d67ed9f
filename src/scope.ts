import type { SessionRequest } from './types.js'

/**
 * Where an identity applies: a set of host patterns and a path prefix matched on segment
 * boundaries. Shared by the cookie and header identities.
 */
export interface Scope {
  /** Whether the request's host and path are inside the scope. */
  matches(req: SessionRequest): boolean
}

/** Options that define a {@link Scope}. */
export interface ScopeOptions {
  /** Hostname or `*.example.com` pattern (or several); case-insensitive, port ignored. */
  host?: string | readonly string[] | undefined
  /** Path prefix, matched on `/` boundaries (`/admin` matches `/admin/x`, not `/adminx`). */
  path?: string | undefined
  /** Read the host from `X-Forwarded-Host` (set only behind a proxy that overwrites it). */
  trustProxy?: boolean | undefined
}

const HOSTNAME = /^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$|^\[[0-9a-f:.]+\]$/
// eslint-disable-next-line no-control-regex -- control characters are exactly what the check refuses
const PATH = /^\/[^\s;,?#\x00-\x1f\x7f]*$/
// Request paths are matched after `.` and `..` are resolved, so a scope holding one could never match.
const DOT_SEGMENT = /\/\.\.?(\/|$)/

/** Validate `path` for a scope or cookie; throws a `TypeError` naming `option`. */
export function checkPath(path: unknown, option: string): string {
  if (typeof path !== 'string' || !PATH.test(path) || DOT_SEGMENT.test(path)) {
    throw new TypeError(`${option} must be a path starting with "/" without spaces, ";", ",", "?", "#", control characters or "." and ".." segments`)
  }
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

/** Validate and normalize host patterns; throws a `TypeError` naming `option`. */
export function checkHosts(host: unknown, option: string): string[] | undefined {
  if (host === undefined) return undefined
  const list = typeof host === 'string' ? [host] : host
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(`${option} must be a hostname, a "*.example.com" pattern, or a non-empty array of them`)
  return list.map((item: unknown) => {
    const normalized = typeof item === 'string' ? stripDot(item.toLowerCase()) : ''
    if (!HOSTNAME.test(normalized)) throw new TypeError(`${option} has an invalid hostname pattern: ${JSON.stringify(item)}`)
    return normalized
  })
}

/** Build a {@link Scope}; options must already be valid. */
export function createScope(options: ScopeOptions, optionPrefix: string): Scope {
  const hosts = checkHosts(options.host, `${optionPrefix} "host"`)
  const path = checkPath(options.path ?? '/', `${optionPrefix} "path"`)
  const trustProxy = options.trustProxy === true
  const anyPath = path === '/'
  if (hosts === undefined && anyPath) return { matches: () => true }
  return {
    matches(req) {
      if (hosts !== undefined) {
        const host = requestHost(req, trustProxy)
        if (host === undefined || !hosts.some((pattern) => hostMatches(pattern, host))) return false
      }
      return anyPath || pathMatches(path, requestPath(req.url))
    },
  }
}

/** The request's hostname: lowercase, without port or trailing dot. */
export function requestHost(req: SessionRequest, trustProxy: boolean): string | undefined {
  let raw: string | string[] | undefined
  if (trustProxy) raw = firstValue(req.headers['x-forwarded-host'])
  raw ??= req.headers.host ?? req.headers[':authority']
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 255) return undefined
  let host = raw.trim().toLowerCase()
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    if (end === -1) return undefined
    return host.slice(0, end + 1)
  }
  const colon = host.indexOf(':')
  if (colon !== -1) host = host.slice(0, colon)
  return stripDot(host)
}

/** Whether `host` is matched by `pattern` (`*.example.com` matches subdomains, not the apex). */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1)
    return host.length > suffix.length && host.endsWith(suffix)
  }
  return pattern === host
}

/** Whether `requestPath` is `path` or below it, on a segment boundary. */
export function pathMatches(path: string, requestPath: string): boolean {
  if (path === '/') return true
  if (!requestPath.startsWith(path)) return false
  return requestPath.length === path.length || requestPath.charCodeAt(path.length) === 0x2f
}

/** The path of a request URL with `.` and `..` segments resolved, as a browser would send it. */
export function requestPath(url: string | undefined): string {
  if (url === undefined || url.length === 0) return '/'
  let end = url.length
  const query = url.indexOf('?')
  if (query !== -1) end = query
  const hash = url.indexOf('#')
  if (hash !== -1 && hash < end) end = hash
  let path = end === url.length ? url : url.slice(0, end)
  if (path.charCodeAt(0) !== 0x2f) {
    // Absolute-form request target (`GET http://host/path`): keep only the path.
    const scheme = path.indexOf('://')
    if (scheme === -1) return '/'
    const slash = path.indexOf('/', scheme + 3)
    path = slash === -1 ? '/' : path.slice(slash)
  }
  return path.includes('/.') ? removeDotSegments(path) : path
}

function removeDotSegments(path: string): string {
  const out: string[] = []
  const segments = path.split('/')
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!
    if (segment === '..') out.pop()
    else if (segment !== '.') out.push(segment)
  }
  const last = segments[segments.length - 1]
  if (last === '.' || last === '..') out.push('')
  return '/' + out.join('/')
}

function firstValue(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value
  if (text === undefined) return undefined
  const comma = text.indexOf(',')
  return (comma === -1 ? text : text.slice(0, comma)).trim()
}

function stripDot(host: string): string {
  return host.endsWith('.') ? host.slice(0, -1) : host
}
