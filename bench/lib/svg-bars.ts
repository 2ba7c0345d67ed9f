/**
 * A small dependency-free SVG writer for grouped horizontal bar charts, for pictures of the
 * bench in bench/README.md. The output is self-contained (no fonts, scripts, styles or links to
 * fetch), has a white background so it reads the same in GitHub's light and dark themes, and
 * prints every bar's value beside it. Text widths are estimated, not measured: there is no font
 * to measure with in a file that a browser renders as an image.
 */

/** One bar: a label left of the axis and a value drawn to scale. */
export interface Bar {
  /** Text left of the bar. */
  label: string
  /** The bar's length in axis units; a value that is not a finite number ≥ 0 gets no bar, only "n/a". */
  value: number
  /** Draw the bar in the highlight colour (the subject of the chart) rather than the neutral one. */
  highlight?: boolean
}

/** Bars under one heading. */
export interface BarGroup {
  /** The group's heading. */
  label: string
  bars: readonly Bar[]
}

/** What {@link groupedBarChart} draws. */
export interface BarChart {
  /** First line, bold. */
  title: string
  /** Lines under the title, smaller (provenance, how to read). */
  notes?: readonly string[]
  groups: readonly BarGroup[]
  /** A vertical line across every group at this value (e.g. 1.0 = the baseline), with its label. */
  reference?: { value: number; label: string }
  /** Legend entries for the two bar colours; no legend when absent. */
  legend?: { highlight: string; other: string }
  /** How values print, on the bars and on the axis; two decimals by default. */
  format?: (value: number) => string
  /** Width of the picture in pixels; 960 by default. */
  width?: number
}

/** Geometry and colours, in pixels. */
const FONT = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, sans-serif"
const FONT_SIZE = 13
const TITLE_SIZE = 17
const NOTE_SIZE = 12
const CHAR_WIDTH = 0.6 // of the font size: on the wide side, so labels never run into the bars
const BAR_HEIGHT = 20
const BAR_GAP = 6
const GROUP_GAP = 14
const MARGIN = 16
const COLOURS = { highlight: '#1f6feb', other: '#8c959f', text: '#1f2328', muted: '#59636e', grid: '#d1d9e0', reference: '#cf222e' }

/** Text made safe for SVG character data and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]!};`)
}

/** About how wide `text` is at `size` pixels. */
function textWidth(text: string, size: number): number {
  return text.length * size * CHAR_WIDTH
}

/** A step of 1, 2 or 5 × 10ⁿ that cuts `max` into about five ticks. */
function tickStep(max: number): number {
  const rough = max / 5
  const power = 10 ** Math.floor(Math.log10(rough))
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((step) => step >= rough)!
}

function isDrawable(value: number): boolean {
  return Number.isFinite(value) && value >= 0
}

/** A number for an attribute, without float noise. */
function n(value: number): string {
  return String(Math.round(value * 100) / 100)
}

function text(x: number, y: number, content: string, attributes = ''): string {
  return `<text x="${n(x)}" y="${n(y)}"${attributes === '' ? '' : ` ${attributes}`}>${escapeXml(content)}</text>`
}

/**
 * The SVG text of `chart`: groups one under the other, each a heading and its bars, the bars
 * growing rightwards from a common zero, ticks and grid lines under them, and the reference
 * line (if any) across all groups.
 *
 * @example
 * ```ts
 * const svg = groupedBarChart({
 *   title: 'req/s ÷ bare node:http',
 *   reference: { value: 1, label: 'bare node:http = 1.00' },
 *   groups: [{ label: 'read', bars: [{ label: 'this library', value: 0.88, highlight: true }, { label: 'express-session', value: 0.12 }] }],
 * })
 * ```
 */
export function groupedBarChart(chart: BarChart): string {
  const format = chart.format ?? ((value: number) => value.toFixed(2))
  const width = chart.width ?? 960
  const notes = chart.notes ?? []
  const bars = chart.groups.flatMap((group) => group.bars)
  const labelWidth = Math.max(0, ...bars.map((bar) => textWidth(bar.label, FONT_SIZE)), ...chart.groups.map((group) => textWidth(group.label, FONT_SIZE) - 8))
  const x0 = MARGIN + labelWidth + 10
  const valueRoom = textWidth(format(999.99), FONT_SIZE) + 8
  const plotWidth = Math.max(120, width - x0 - MARGIN - valueRoom)
  const largest = Math.max(chart.reference?.value ?? 0, ...bars.map((bar) => (isDrawable(bar.value) ? bar.value : 0)))
  const step = tickStep(largest > 0 ? largest * 1.05 : 1)
  const axisMax = Math.max(step, Math.ceil((largest * 1.05) / step) * step)
  const scale = plotWidth / axisMax
  const out: string[] = []

  let y = MARGIN + TITLE_SIZE
  out.push(text(MARGIN, y, chart.title, `font-size="${TITLE_SIZE}" font-weight="600"`))
  for (const note of notes) {
    y += NOTE_SIZE + 6
    out.push(text(MARGIN, y, note, `font-size="${NOTE_SIZE}" fill="${COLOURS.muted}"`))
  }
  if (chart.legend !== undefined) {
    y += NOTE_SIZE + 12
    let x = MARGIN
    for (const [colour, label] of [
      [COLOURS.highlight, chart.legend.highlight],
      [COLOURS.other, chart.legend.other],
    ] as const) {
      out.push(`<rect x="${n(x)}" y="${n(y - 10)}" width="12" height="12" fill="${colour}"/>`)
      out.push(text(x + 18, y, label, `font-size="${NOTE_SIZE}"`))
      x += 18 + textWidth(label, NOTE_SIZE) + 24
    }
  }
  y += 14
  const plotTop = y

  const body: string[] = []
  for (const group of chart.groups) {
    y += FONT_SIZE + 6
    body.push(text(MARGIN, y, group.label, `font-weight="600"`))
    y += 8
    for (const bar of group.bars) {
      const middle = y + BAR_HEIGHT / 2 + FONT_SIZE * 0.35
      body.push(text(x0 - 10, middle, bar.label, 'text-anchor="end"'))
      if (isDrawable(bar.value)) {
        const length = bar.value * scale
        body.push(
          `<rect class="bar" x="${n(x0)}" y="${n(y)}" width="${n(length)}" height="${BAR_HEIGHT}" fill="${bar.highlight === true ? COLOURS.highlight : COLOURS.other}" data-value="${bar.value}"><title>${escapeXml(`${bar.label}: ${format(bar.value)}`)}</title></rect>`,
        )
        // The figure goes after the bar, or after the reference line when it would cross it; a white
        // halo keeps it readable over grid lines.
        const figure = format(bar.value)
        let at = x0 + length + 6
        const reference = chart.reference === undefined ? undefined : x0 + chart.reference.value * scale
        if (reference !== undefined && at < reference + 3 && at + figure.length * FONT_SIZE * 0.62 > reference - 3) at = reference + 6
        body.push(text(at, middle, figure, 'font-weight="600" stroke="#ffffff" stroke-width="4" paint-order="stroke"'))
      } else {
        body.push(text(x0 + 6, middle, 'n/a', `fill="${COLOURS.muted}"`))
      }
      y += BAR_HEIGHT + BAR_GAP
    }
    y += GROUP_GAP - BAR_GAP
  }
  const plotBottom = y

  const grid: string[] = []
  for (let tick = 0; tick <= axisMax + step / 1000; tick += step) {
    const x = x0 + tick * scale
    grid.push(`<line x1="${n(x)}" y1="${n(plotTop)}" x2="${n(x)}" y2="${n(plotBottom)}" stroke="${COLOURS.grid}" stroke-width="1"/>`)
    grid.push(text(x, plotBottom + 16, format(tick), `text-anchor="middle" font-size="${NOTE_SIZE}" fill="${COLOURS.muted}"`))
  }
  y = plotBottom + 16
  if (chart.reference !== undefined) {
    const x = x0 + chart.reference.value * scale
    // Under the bars and their figures, over the grid.
    grid.push(
      `<line class="reference" x1="${n(x)}" y1="${n(plotTop)}" x2="${n(x)}" y2="${n(plotBottom)}" stroke="${COLOURS.reference}" stroke-width="2" stroke-dasharray="6 4"/>`,
    )
    y += NOTE_SIZE + 8
    body.push(text(x, y, chart.reference.label, `text-anchor="middle" font-size="${NOTE_SIZE}" font-weight="600" fill="${COLOURS.reference}"`))
  }
  const height = Math.ceil(y + MARGIN)

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${escapeXml(FONT)}" font-size="${FONT_SIZE}" fill="${COLOURS.text}">`,
    `<title>${escapeXml(chart.title)}</title>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...grid,
    ...out,
    ...body,
    '</svg>',
    '',
  ].join('\n')
}
