/** A small line chart of the last samples (SVG; no inline script or style, as the CSP wants). */
export function Sparkline(props: { label: string; values: number[]; max: number; unit: string }) {
  const w = 280
  const h = 60
  const n = Math.max(props.values.length, 2)
  const points = props.values
    .map((v, i) => `${(i / (n - 1)) * w},${h - (Math.min(v, props.max) / (props.max || 1)) * h}`)
    .join(' ')
  const last = props.values.at(-1)
  return (
    <figure class="chart">
      <figcaption>
        {props.label}{' '}
        <b>{last === undefined ? '–' : `${Math.round(last * 10) / 10} ${props.unit}`}</b>
      </figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} width={w} height={h} role="img" aria-label={props.label}>
        <rect x="0" y="0" width={w} height={h} class="bg" />
        <polyline points={points} class="line" />
      </svg>
    </figure>
  )
}
