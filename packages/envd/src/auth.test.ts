import { describe, expect, it } from 'vitest'
import { basicAuthUser, hasValidToken } from './auth.js'

describe('basicAuthUser', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64')
  it.each([
    [`Basic ${b64('root:')}`, 'root'],
    [`basic ${b64('user:')}`, 'user'],
    [`Basic ${b64('alice')}`, 'alice'],
    [`Basic ${b64(':')}`, undefined],
    ['Bearer abc', undefined],
    [undefined, undefined],
  ])('%s → %s', (header, expected) => {
    expect(basicAuthUser(header)).toBe(expected)
  })
})

describe('hasValidToken', () => {
  it.each([
    [undefined, undefined, true],
    [undefined, 'x', true],
    ['tok', 'tok', true],
    ['tok', 'tok2', false],
    ['tok', undefined, false],
    ['tok', ['tok'], false],
  ])('expected %s header %s → %s', (expected, header, ok) => {
    expect(hasValidToken(expected, header)).toBe(ok)
  })
})
