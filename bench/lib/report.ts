/** What each bench section hands to `bench/run.ts`. */

/** One target of issue 5 and how this run did against it. */
export interface TargetCheck {
  /** What is measured, e.g. "session-hit read / bare node:http". */
  name: string
  /** The target, e.g. "≥ 0.80". */
  target: string
  /** What this run measured, formatted. */
  measured: string
  /** Whether the target was met; `undefined` when it could not be measured in this run. */
  met: boolean | undefined
}

/** A finished section: markdown for stdout and the README, and its targets. */
export interface SectionReport {
  /** Heading of the section. */
  title: string
  /** How it was measured, one paragraph. */
  method: string
  /** Tables and notes, in markdown. */
  body: string
  targets: TargetCheck[]
}

/** One line summing up `targets` under a section's tables; empty when there are none. */
export function targetLine(targets: readonly TargetCheck[]): string {
  if (targets.length === 0) return ''
  const verdict = (met: boolean | undefined): string => (met === undefined ? 'not measured' : met ? 'met' : 'MISSED')
  return `Targets: ${targets.map((t) => `${t.name} ${t.target}: ${t.measured} (${verdict(t.met)})`).join('; ')}.`
}
