/**
 * The HTTP section's load generators. wrk (C, one thread, `--latency`) is preferred: on a
 * two-core machine the load generator shares the cores with the server, and autocannon, which
 * runs JavaScript in this process, takes a whole core and adds its own scheduling to every
 * request, so it widens every gap between servers. autocannon is the fallback when wrk is not
 * installed (`apt-get install wrk`).
 */
import { execFileSync, spawn } from 'node:child_process'

/** What one load run measured. */
export interface LoadResult {
  rps: number
  requests: number
  /** 99th percentile latency in milliseconds. */
  p99: number
  /** Socket errors, timeouts and non-2xx answers. */
  failures: number
}

/** A load generator the HTTP section can use. */
export type LoadClient = 'wrk' | 'autocannon'

/** wrk when it is on the PATH, else autocannon. */
export function defaultClient(): LoadClient {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' })
    return 'wrk'
  } catch (err) {
    // wrk --version exits 1 after printing its version: it is installed.
    return (err as { status?: number | null }).status === 1 ? 'wrk' : 'autocannon'
  }
}

/** Run wrk against `url` for `seconds` with `connections`, one thread; resolves to what it measured. */
export function wrkLoad(url: string, seconds: number, connections: number, headers: Record<string, string>): Promise<LoadResult> {
  const args = ['-t1', `-c${connections}`, `-d${Math.max(1, Math.round(seconds))}s`, '--latency', '--timeout', '5s']
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`)
  args.push(url)
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
    child.once('error', reject)
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`wrk exited with ${code}: ${err || out}`))
      else {
        try {
          resolve(parseWrk(out))
        } catch (parseError) {
          reject(parseError instanceof Error ? parseError : new Error(String(parseError)))
        }
      }
    })
  })
}

const UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 }

/**
 * What wrk's report says (`wrk --latency` output): requests and their duration, the 99th
 * percentile latency, socket errors and non-2xx answers.
 *
 * @throws Error when the text is not a wrk report.
 */
export function parseWrk(text: string): LoadResult {
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(text)
  if (done === null) throw new Error(`not a wrk report: ${text.slice(0, 200)}`)
  const requests = Number(done[1])
  const seconds = (Number(done[2]) * UNITS[done[3]!]!) / 1000
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(text)
  const sockets = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text)
  const failures = (sockets === null ? 0 : sockets.slice(1).reduce((sum, n) => sum + Number(n), 0)) + (non2xx === null ? 0 : Number(non2xx[1]))
  return {
    rps: requests / Math.max(seconds, 0.001),
    requests,
    p99: p99 === null ? Number.NaN : Number(p99[1]) * UNITS[p99[2]!]!,
    failures,
  }
}
