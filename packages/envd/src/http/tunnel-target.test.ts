import { describe, expect, it } from 'vitest'
import { parseTunnelTarget } from './tunnel-target.js'

describe('parseTunnelTarget', () => {
  it.each([
    ['port=80', { host: 'localhost', port: 80 }],
    ['host=127.0.0.1&port=65535', { host: '127.0.0.1', port: 65535 }],
    ['host=[::1]&port=1', { host: '::1', port: 1 }],
    ['host=db.internal&port=5432', { host: 'db.internal', port: 5432 }],
    ['host=&port=22', { host: 'localhost', port: 22 }],
  ])('%s', (q, expected) => {
    expect(parseTunnelTarget(new URLSearchParams(q))).toEqual({ ok: true, ...expected })
  })

  it.each([
    [''],
    ['port='],
    ['port=0'],
    ['port=65536'],
    ['port=12a'],
    ['port=-1'],
    ['port=80&host=a b'],
    ['port=80&host=a/b'],
  ])('rejects %s', (q) => {
    expect(parseTunnelTarget(new URLSearchParams(q)).ok).toBe(false)
  })
})
