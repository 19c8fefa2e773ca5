import { describe, expect, it } from 'vitest'
import { parseInitBody } from './init-body.js'

describe('parseInitBody', () => {
  it.each([
    [undefined, {}],
    [{}, {}],
    [
      {
        accessToken: 't',
        envVars: { A: '1' },
        defaultUser: 'user',
        defaultWorkdir: '/w',
        timestamp: '2024-01-01T00:00:00Z',
      },
      {
        accessToken: 't',
        envVars: { A: '1' },
        defaultUser: 'user',
        defaultWorkdir: '/w',
        timestamp: '2024-01-01T00:00:00Z',
      },
    ],
    [{ accessToken: null }, {}],
  ])('accepts %j', (raw, value) => {
    expect(parseInitBody(raw)).toEqual({ ok: true, value })
  })

  it.each([
    [[]],
    ['x'],
    [{ hyperloopIP: '1.2.3.4' }],
    [{ accessToken: 5 }],
    [{ accessToken: '' }],
    [{ envVars: { A: 1 } }],
    [{ envVars: { 'A=B': '1' } }],
    [{ envVars: [] }],
    [{ defaultWorkdir: 'rel' }],
    [{ timestamp: 'yesterday' }],
  ])('rejects %j', (raw) => {
    expect(parseInitBody(raw).ok).toBe(false)
  })
})
