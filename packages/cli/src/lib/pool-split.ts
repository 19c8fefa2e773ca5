import { WarrenError } from '@warren/shared'

/** `10.12.0.0/16` split in `parts` equal, non-overlapping CIDRs (a power of two that fits). */
export function splitPool(pool: string, parts: number): string[] {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(pool)
  const octets = m?.slice(1, 5).map(Number) ?? []
  const bits = Number(m?.[5])
  if (!m || octets.some((o) => o > 255) || bits > 30)
    throw new WarrenError(
      'invalid_argument',
      `address pool '${pool}' is not an IPv4 CIDR of /30 or wider`,
    )
  const extra = Math.ceil(Math.log2(Math.max(parts, 1)))
  // Each part holds at least one sandbox (a /30).
  if (bits + extra > 30)
    throw new WarrenError(
      'invalid_argument',
      `address pool '${pool}' is too small for ${parts} nodes`,
    )
  const base = octets.reduce((a, o) => a * 256 + o, 0)
  const mask = bits === 0 ? 0 : (2 ** 32 - 2 ** (32 - bits)) >>> 0
  const network = (base & mask) >>> 0
  const size = 2 ** (32 - bits - extra)
  return Array.from({ length: parts }, (_, i) => {
    const a = network + i * size
    const dotted = [24, 16, 8, 0].map((s) => Math.floor(a / 2 ** s) % 256).join('.')
    return `${dotted}/${bits + extra}`
  })
}
