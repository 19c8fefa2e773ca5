import { describe, expect, it } from 'vitest'
import { capEnd, endAfter, extendedEnd } from './lease.js'

const limits = { startedAt: 1_000_000, maxLifetimeS: 3600 }

describe('lease rules', () => {
  it.each([
    { name: 'plain timeout', now: 1_000_000, timeout: 300, want: 1_300_000 },
    { name: 'shortening is allowed', now: 1_100_000, timeout: 10, want: 1_110_000 },
    { name: 'zero expires now', now: 1_100_000, timeout: 0, want: 1_100_000 },
    { name: 'capped by the maximum lifetime', now: 1_000_000, timeout: 86_400, want: 4_600_000 },
  ])('endAfter: $name', ({ now, timeout, want }) => {
    expect(endAfter(now, timeout, limits)).toBe(want)
  })

  it.each([
    { name: 'extends', current: 1_050_000, now: 1_040_000, d: 60, want: 1_100_000 },
    { name: 'never shortens', current: 2_000_000, now: 1_040_000, d: 60, want: 2_000_000 },
    {
      name: 'cap applies to the extension',
      current: 4_000_000,
      now: 4_500_000,
      d: 3600,
      want: 4_600_000,
    },
  ])('extendedEnd: $name', ({ current, now, d, want }) => {
    expect(extendedEnd(current, now, d, limits)).toBe(want)
  })

  it('capEnd leaves earlier deadlines alone', () => {
    expect(capEnd(2_000_000, limits)).toBe(2_000_000)
  })
})
