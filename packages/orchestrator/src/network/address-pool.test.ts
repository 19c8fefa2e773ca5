import { describe, expect, it } from 'vitest'
import { AddressPool } from './address-pool.js'

describe('AddressPool', () => {
  it('hands out /30 slots with the host at .1 and the sandbox at .2', () => {
    const pool = new AddressPool('10.20.0.0/24')
    const a = pool.acquire()
    expect(a).toEqual({ index: 1, hostIp: '10.20.0.5', sandboxIp: '10.20.0.6' })
    expect(pool.acquire().sandboxIp).toBe('10.20.0.10')
    expect(pool.free).toBe(64 - 1 - 2)
  })

  it('exhausts with a capacity error and does not reuse a slot at once', () => {
    const pool = new AddressPool('10.20.0.0/28')
    const got = [pool.acquire(), pool.acquire(), pool.acquire()].map((s) => s.index)
    expect(got).toEqual([1, 2, 3])
    expect(() => pool.acquire()).toThrow(/no free sandbox addresses/)
    pool.release(2)
    pool.release(1)
    expect(pool.acquire().index).toBe(1)
  })

  it('claims adopted slots and rejects pools that are too small or invalid', () => {
    const pool = new AddressPool('10.20.0.0/28')
    pool.claim(2)
    expect([pool.acquire().index, pool.acquire().index]).toEqual([1, 3])
    expect(() => pool.claim(4)).toThrow(/outside/)
    expect(() => new AddressPool('10.20.0.0/30')).toThrow(/too small/)
    expect(() => new AddressPool('10.20.0.1/24')).toThrow(/host bits/)
  })
})
