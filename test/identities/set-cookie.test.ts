import test from 'ava'
import { putSetCookie, SetCookieLines } from '../../identities/set-cookie.js'
import { FakeResponse } from '../helpers/fake-http.js'

const ALL = { path: '/app', domain: 'example.com', priority: 'high', sameSite: 'strict', httpOnly: true, partitioned: true } as const

test('a line carries the attributes in the order browsers and the cookies package write them', (t) => {
  const lines = new SetCookieLines(ALL)
  t.is(
    lines.line('sid', 'abc', Date.UTC(2030, 0, 2, 3, 4, 5, 678), true),
    'sid=abc; path=/app; expires=Wed, 02 Jan 2030 03:04:05 GMT; domain=example.com; priority=high; samesite=strict; secure; httponly; partitioned',
  )
  const plain = new SetCookieLines({ path: '/', domain: undefined, priority: undefined, sameSite: false, httpOnly: false, partitioned: false })
  t.is(plain.line('sid', 'abc', undefined, false), 'sid=abc; path=/')
})

test('Expires follows each deadline to the second, and an empty value clears the cookie', (t) => {
  const lines = new SetCookieLines({ ...ALL, partitioned: false })
  const at = Date.UTC(2030, 0, 2, 3, 4, 5, 0)
  t.regex(lines.line('sid', 'a', at + 999, false), /expires=Wed, 02 Jan 2030 03:04:05 GMT;/)
  t.regex(lines.line('sid', 'a', at + 1000, false), /expires=Wed, 02 Jan 2030 03:04:06 GMT;/)
  t.regex(lines.line('sid', 'a', at, false), /expires=Wed, 02 Jan 2030 03:04:05 GMT;/)
  t.regex(lines.line('sid', '', at, false), /^sid=; path=\/app; expires=Thu, 01 Jan 1970 00:00:00 GMT;/)
  t.regex(lines.line('sid', '', undefined, false), /expires=Thu, 01 Jan 1970 00:00:00 GMT/)
})

test('putting lines replaces earlier lines of the same cookies and keeps every other line in order', (t) => {
  const res = new FakeResponse()
  putSetCookie(res, ['sid=', 'sid.sig='], ['sid=1', 'sid.sig=s1'])
  t.deepEqual(res.getHeader('set-cookie'), ['sid=1', 'sid.sig=s1'])
  res.setHeader('Set-Cookie', ['theme=dark', ...(res.getHeader('set-cookie') as string[]), 'sidx=keep'])
  putSetCookie(res, ['sid=', 'sid.sig='], ['sid=2', 'sid.sig=s2'])
  t.deepEqual(res.getHeader('set-cookie'), ['theme=dark', 'sidx=keep', 'sid=2', 'sid.sig=s2'])
  res.setHeader('Set-Cookie', 'lang=en')
  putSetCookie(res, ['sid='], ['sid=3'])
  t.deepEqual(res.getHeader('set-cookie'), ['lang=en', 'sid=3'])
})
