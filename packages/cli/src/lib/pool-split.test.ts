import { describe, expect, it } from 'vitest'
import { splitPool } from './pool-split.js'

describe('splitPool', () => {
  it.each([
    ['10.12.0.0/16', 1, ['10.12.0.0/16']],
    ['10.12.0.0/16', 2, ['10.12.0.0/17', '10.12.128.0/17']],
    ['10.12.0.0/16', 3, ['10.12.0.0/18', '10.12.64.0/18', '10.12.128.0/18']],
    ['10.12.5.9/16', 2, ['10.12.0.0/17', '10.12.128.0/17']],
    [
      '192.168.4.0/28',
      4,
      ['192.168.4.0/30', '192.168.4.4/30', '192.168.4.8/30', '192.168.4.12/30'],
    ],
  ])('%s in %i', (pool, parts, want) => expect(splitPool(pool, parts)).toEqual(want))

  it.each([
    ['10.12.0.0', 2],
    ['10.300.0.0/16', 2],
    ['10.12.0.0/30', 2],
    ['x/16', 1],
  ])('refuses %s for %i nodes', (pool, parts) =>
    expect(() => splitPool(pool, parts)).toThrow(/address pool/),
  )
})
