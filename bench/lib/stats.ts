/** Order statistics for benchmark tables. */
/** The p-th percentile (nearest rank); NaN for no samples. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  if (!s.length) return Number.NaN
  return s[Math.max(0, Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1))]!
}

export const median = (xs: number[]) => pct(xs, 50)

export const ms = (x: number) => `${x.toFixed(1)} ms`.padStart(10)
