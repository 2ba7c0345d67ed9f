import test from 'ava'
import { readFileSync } from 'node:fs'
import { httpChartSvg, httpRatios } from '../../bench/http/chart.js'
import { estimateLeft, formatDuration, progressLine } from '../../bench/lib/progress.js'
import { escapeXml, groupedBarChart } from '../../bench/lib/svg-bars.js'

/** Every tag opened is closed in order, attributes quoted, no stray `<` or `&` in text: enough XML for these files. */
function assertWellFormed(svg: string): void {
  const stack: string[] = []
  const body = svg.replace(/^<\?xml[^>]*\?>\s*/, '')
  const tags = body.match(/<[^>]*>/g) ?? []
  const texts = body.split(/<[^>]*>/)
  for (const text of texts) {
    if (text.includes('<') || /&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(text)) throw new Error(`bad character data: ${text}`)
  }
  for (const tag of tags) {
    if (!/^<\/?[a-zA-Z][\w:-]*(\s+[\w:-]+="[^"<]*")*\s*\/?>$/.test(tag)) throw new Error(`bad tag: ${tag}`)
    if (tag.startsWith('</')) {
      const name = /^<\/([\w:-]+)/.exec(tag)![1]!
      if (stack.pop() !== name) throw new Error(`unbalanced </${name}>`)
    } else if (!tag.endsWith('/>')) stack.push(/^<([\w:-]+)/.exec(tag)![1]!)
  }
  if (stack.length !== 0) throw new Error(`unclosed: ${stack.join(', ')}`)
}

/** Widths of the bars drawn in the bar colours, in order. */
function barWidths(svg: string): number[] {
  return [...svg.matchAll(/<rect class="bar" x="[\d.]+" y="[\d.]+" width="([\d.]+)"/g)].map((m) => Number(m[1]))
}

test('bars are drawn to scale, labels escaped, and the SVG is well formed', (t) => {
  const svg = groupedBarChart({
    title: 'A <title> & "quotes"',
    groups: [
      {
        label: 'read',
        bars: [
          { label: 'this <library>', value: 0.8, highlight: true },
          { label: "peer's", value: 0.2 },
        ],
      },
      { label: 'write', bars: [{ label: 'x', value: 0.4, highlight: true }] },
    ],
    reference: { value: 1, label: 'bare = 1.00' },
    legend: { highlight: 'us', other: 'them' },
  })
  t.notThrows(() => assertWellFormed(svg))
  t.true(svg.startsWith('<svg') || svg.startsWith('<?xml'))
  t.true(svg.includes('A &lt;title&gt; &amp; &quot;quotes&quot;'))
  t.true(svg.includes('this &lt;library&gt;'))
  t.false(svg.includes('<library>'))
  const widths = barWidths(svg)
  t.is(widths.length, 3)
  t.true(Math.abs(widths[0]! / widths[1]! - 4) < 0.05, `${widths.join(', ')}`)
  t.true(Math.abs(widths[0]! / widths[2]! - 2) < 0.05, `${widths.join(', ')}`)
  t.true(svg.includes('0.80') && svg.includes('0.20') && svg.includes('0.40'))
})

test('escapeXml escapes the five XML specials', (t) => {
  t.is(escapeXml(`<a href="x">&'</a>`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;')
})

test("the HTTP chart is drawn from the README's HTTP table, bare left out", (t) => {
  const readme = readFileSync(new URL('../../bench/README.md', import.meta.url), 'utf8')
  const ratios = httpRatios(readme)
  t.true(ratios.length > 0)
  t.false(ratios.some((row) => row.server === 'bare node:http'))
  t.true(ratios.every((row) => Number.isNaN(row.ratio) || (row.ratio > 0 && row.ratio < 5)))
  const svg = httpChartSvg(readme)
  t.truthy(svg)
  t.notThrows(() => assertWellFormed(svg!))
  t.is(barWidths(svg!).length, ratios.filter((row) => Number.isFinite(row.ratio)).length)
  t.is(httpChartSvg('no table here'), undefined)
})

test('progress lines: cell n of N, elapsed and time left', (t) => {
  t.is(formatDuration(45), '45 s')
  t.is(formatDuration(125), '2 min 05 s')
  t.is(formatDuration(14 * 60), '14 min')
  t.is(formatDuration(3900), '1 h 05 min')
  t.is(formatDuration(Number.NaN), '?')
  t.is(estimateLeft(0, 0, 100), 100)
  t.is(estimateLeft(20, 10, 100), 180) // running twice as slow as planned
  t.is(estimateLeft(50, 120, 100), 0)
  t.is(
    progressLine({ n: 3, total: 12, label: 'http round 1/3, read: bare', elapsedSeconds: 130, leftSeconds: 840 }),
    '[bench] cell  3/12 · http round 1/3, read: bare · 2 min 10 s elapsed, ~14 min left',
  )
})
