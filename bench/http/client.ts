/** A tiny HTTP client for the setup requests of the HTTP bench (not for load). */
import { request } from 'node:http'

/** A finished response: status, Set-Cookie lines and body. */
export interface SimpleResponse {
  status: number
  setCookie: string[]
  body: string
}

/** GET `path` from 127.0.0.1:`port`, with an optional Cookie header; bounded by `timeoutMs`. */
export function get(port: number, path: string, cookie?: string, timeoutMs = 5000): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: cookie === undefined ? {} : { cookie }, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, setCookie: res.headers['set-cookie'] ?? [], body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out after ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** The Cookie header a browser would send back after these Set-Cookie lines (name=value pairs only). */
export function cookieHeader(setCookie: readonly string[]): string {
  // A pair with an empty value is a cookie being cleared: a browser would not send it.
  return setCookie
    .map((line) => line.split(';', 1)[0]!.trim())
    .filter((pair) => pair.indexOf('=') < pair.length - 1)
    .join('; ')
}
