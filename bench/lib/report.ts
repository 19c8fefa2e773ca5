// The command line every benchmark shares and its machine-readable summary:
// with --json, a benchmark prints (after the tables it prints for people) one
// last stdout line, a JSON object of its headline figures and ratios, so that
// scripts and CI can compare runs.
import { type ParseArgsConfig, parseArgs } from 'node:util'

type Options = NonNullable<ParseArgsConfig['options']>

/** The benchmark's own options from the command line, and `json` (--json). */
export function benchArgs<O extends Options>(options: O) {
  const { values } = parseArgs({
    options: { ...options, json: { type: 'boolean', default: false } as const },
  })
  return values
}

/**
 * Headline figures by name, each a number whose unit the name says
 * (`…Ms`, `…MiBps`, `…PerS`; `…Over…` for a ratio).
 */
export type Figures = Record<string, number>

/**
 * Runs a benchmark's `main` (which tears down what it started before it
 * returns). With `json`, the figures it returns are printed as the last line
 * of stdout, `{"benchmark": name, ...figures}`; figures that could not be
 * measured (NaN, ±Infinity) are null. A failure is printed and exits 1.
 */
export async function runBenchmark(
  name: string,
  json: boolean,
  main: () => Promise<Figures>,
): Promise<void> {
  try {
    const figures = await main()
    if (json) process.stdout.write(`${summaryLine(name, figures)}\n`)
  } catch (err) {
    console.error(err)
    process.exitCode = 1
  }
}

/** The JSON summary line (without its newline). */
export function summaryLine(name: string, figures: Figures): string {
  const out: Record<string, number | string | null> = { benchmark: name }
  for (const [k, v] of Object.entries(figures)) out[k] = Number.isFinite(v) ? round(v) : null
  return JSON.stringify(out)
}

/** Four decimal places are plenty for a benchmark figure. */
function round(v: number): number {
  return Math.round(v * 10_000) / 10_000
}
