import test from 'ava'
import { parseWrk } from '../../bench/http/wrk.js'

const REPORT = `Running 3s test @ http://127.0.0.1:40123/write
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   612.33us  201.10us   9.87ms   91.02%
    Req/Sec    52.31k     2.10k   55.80k    80.00%
  Latency Distribution
     50%  580.00us
     75%  650.00us
     90%  720.00us
     99%    1.42ms
  156214 requests in 3.00s, 19.22MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  52071.33
Transfer/sec:      6.41MB
`

test('parseWrk reads the requests, rate, p99 and failures of a wrk --latency report', (t) => {
  const result = parseWrk(REPORT)
  t.is(result.requests, 156214)
  t.is(Math.round(result.rps), 52071)
  t.is(result.p99, 1.42)
  t.is(result.failures, 7)
})

test('parseWrk: latencies in microseconds and seconds, no errors', (t) => {
  const text = REPORT.replace('1.42ms', '980.00us')
    .replace(/ {2}Socket errors.*\n/, '')
    .replace(/ {2}Non-2xx.*\n/, '')
    .replace('in 3.00s', 'in 2.50s')
  const result = parseWrk(text)
  t.is(result.p99, 0.98)
  t.is(result.failures, 0)
  t.is(Math.round(result.rps), Math.round(156214 / 2.5))
})

test('parseWrk refuses what is not a wrk report', (t) => {
  t.throws(() => parseWrk('wrk: connection refused'), { message: /not a wrk report/ })
})
