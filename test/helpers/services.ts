import test, { type TestFn } from 'ava'
import { connect } from 'node:net'

/** Whether services must be there: CI and REQUIRE_SERVICES turn a missing server into a failure. */
export const servicesRequired = Boolean(process.env['CI'] || process.env['REQUIRE_SERVICES'])

/** The MariaDB/MySQL server the tests use. */
export const MYSQL_URL = process.env['MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test'

/** The Redis server the tests use. */
export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'

/** Resolves when a TCP connection to `url`'s host and port opens within `timeoutMs`. */
export function probeTcp(url: string, defaultPort: number, timeoutMs = 2000): Promise<void> {
  const parsed = new URL(url)
  const port = Number(parsed.port || defaultPort)
  const host = parsed.hostname || '127.0.0.1'
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.end()
      resolve()
    })
    socket.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

/**
 * The `test` function to use for tests that need a service: `test` when the service answers,
 * `test.skip` with a loud message when it does not, and a thrown error (the file fails) when
 * `CI` or `REQUIRE_SERVICES` is set.
 *
 * @example
 * ```ts
 * const mysqlTest = await serviceTest('MariaDB', () => probeTcp(MYSQL_URL, 3306))
 * mysqlTest('writes land', async (t) => { ... })
 * ```
 */
export async function serviceTest(name: string, probe: () => Promise<void>): Promise<TestFn> {
  try {
    await probe()
    return test
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    if (servicesRequired) throw new Error(`${name} is required (CI or REQUIRE_SERVICES is set) but unreachable: ${reason}`)
    const line = '!'.repeat(78)
    console.warn(
      `\n${line}\n!!! SKIPPING ${name} TESTS: ${name} is unreachable (${reason}).\n!!! Set it up, or set REQUIRE_SERVICES=1 to make this a failure.\n${line}\n`,
    )
    return test.skip as unknown as TestFn
  }
}
