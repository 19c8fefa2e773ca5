import { describe, expect, it } from 'vitest'
import { hostName } from './proxy.js'

describe('hostName', () => {
  it.each([
    ['allowed.test', 'allowed.test'],
    ['Allowed.Test:8080', 'allowed.test'],
    ['[::1]:80', null],
    ['', null],
    [undefined, null],
  ])('%j → %s', (host, want) => {
    expect(hostName(host)).toBe(want)
  })
})
