/** `1h 02m 05s`, `4m 09s`, `12s`; past moments read `0s`. */
export function countdown(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  const pad = (n: number) => String(n).padStart(2, '0')
  if (h) return `${h}h ${pad(m)}m ${pad(sec)}s`
  if (m) return `${m}m ${pad(sec)}s`
  return `${sec}s`
}

export function duration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`
  if (seconds % 3600 === 0) return `${seconds / 3600}h`
  if (seconds % 60 === 0) return `${seconds / 60}m`
  return `${seconds}s`
}

export function time(iso: string): string {
  return new Date(iso).toLocaleString(undefined, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  })
}

export function mib(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MiB`
}
