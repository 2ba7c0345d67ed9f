/**
 * The HTTP section's chart (bench/http-ratios.svg): each server's req/s as a ratio of bare
 * node:http, per route, read from the section's own table in bench/README.md. Reading the
 * table rather than the run's cells means the chart always shows what the table says, and can
 * be redrawn from a README without running anything (`npx tsx bench/run.ts --redraw`).
 */
import type { ReadmeChart } from '../lib/readme.js'
import { groupedBarChart, type BarGroup } from '../lib/svg-bars.js'

/** The chart's file name, next to the README. */
export const HTTP_CHART_FILE = 'http-ratios.svg'

/** First cell of the HTTP table's header, and its ratio column. */
const ROUTE_SERVER = 'route — server'
const RATIO_COLUMN = '÷ bare (median)'
const BARE = 'bare node:http'
/** Servers whose label names the library are drawn in the highlight colour. */
const LIBRARY = 'caching-session-manager'

/** One row of the HTTP table that the chart draws. */
export interface HttpRatio {
  route: string
  server: string
  ratio: number
}

/** The cells of a markdown table row, trimmed. */
function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((cell) => cell.trim())
}

/**
 * The median ratios of the HTTP table in `markdown` (a section block or a whole README), in
 * table order, bare node:http's own rows left out; empty when there is no such table.
 */
export function httpRatios(markdown: string): HttpRatio[] {
  const lines = markdown.split('\n')
  const start = lines.findIndex((line) => line.startsWith('|') && cells(line)[0] === ROUTE_SERVER)
  if (start === -1) return []
  const column = cells(lines[start]!).indexOf(RATIO_COLUMN)
  if (column === -1) return []
  const ratios: HttpRatio[] = []
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break
    const row = cells(line)
    const [route, server] = row[0]!.split(' — ')
    if (route === undefined || server === undefined || server === BARE) continue
    const value = row[column]
    ratios.push({ route, server, ratio: value === undefined || value === 'n/a' ? Number.NaN : Number(value) })
  }
  return ratios
}

/** `Run 2026-12-02 16:04 UTC`, `3 rounds × 5 s per cell, 32 connections` and the load generator from a section block, when found. */
function provenance(block: string): string[] {
  const run = /^Run (\S+ \S+ UTC)/m.exec(block)?.[1]
  const found = /^(\d+ rounds? × [\d.]+ s per cell, \d+ connections), (wrk|autocannon)/m.exec(block)
  const method = found === null ? undefined : `${found[1]!}, load from ${found[2]!}`
  return [[run === undefined ? undefined : `run ${run}`, method].filter((part) => part !== undefined).join(', ')].filter((line) => line !== '')
}

/** The SVG of the HTTP chart for `block`, or `undefined` when it holds no HTTP table. */
export function httpChartSvg(block: string): string | undefined {
  const ratios = httpRatios(block)
  if (ratios.length === 0) return undefined
  const routes = [...new Set(ratios.map((row) => row.route))]
  const groups: BarGroup[] = routes.map((route) => ({
    label: route,
    bars: ratios.filter((row) => row.route === route).map((row) => ({ label: row.server, value: row.ratio, highlight: row.server.includes(LIBRARY) })),
  }))
  return groupedBarChart({
    title: 'HTTP requests per second as a ratio of bare node:http (higher is better)',
    notes: [
      'Median over rounds of each server’s req/s ÷ the mean of the bare node:http runs just before and after it; 1.00 = as fast as no session at all.',
      ...provenance(block),
    ],
    groups,
    reference: { value: 1, label: 'bare node:http = 1.00' },
    legend: { highlight: 'caching-session-manager', other: 'other session libraries' },
  })
}

/** The chart `writeResults` draws next to the README from the HTTP block. */
export const HTTP_CHART: ReadmeChart = { section: 'http', file: HTTP_CHART_FILE, render: httpChartSvg }
