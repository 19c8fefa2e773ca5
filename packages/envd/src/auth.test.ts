import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { basicAuthUser, fileSignature, hasValidToken, verifyFileSignature } from './auth.js'

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

describe('file signatures', () => {
  it('matches the SDK computation', () => {
    const raw = '/home/user/a.txt:read:user:secret'
    const sdk = `v1_${createHash('sha256').update(raw).digest('base64').replace(/=+$/, '')}`
    expect(
      fileSignature({ path: '/home/user/a.txt', operation: 'read', user: 'user', token: 'secret' }),
    ).toBe(sdk)
  })

  const base = { token: 't', path: 'p', operation: 'write' as const, user: undefined }
  const sig = (expiration?: number) =>
    fileSignature({ path: 'p', operation: 'write', user: '', token: 't', expiration })

  it.each([
    [{ signature: sig(), expiration: undefined }, true],
    [{ signature: sig(200), expiration: '200' }, true],
    [{ signature: sig(50), expiration: '50' }, false],
    [{ signature: sig(200), expiration: undefined }, false],
    [{ signature: undefined, expiration: undefined }, false],
    [{ signature: sig(), expiration: 'abc' }, false],
    [{ signature: `${sig()}x`, expiration: undefined }, false],
  ])('%j → %s', (input, ok) => {
    expect(verifyFileSignature({ ...base, ...input, nowSeconds: 100 }).ok).toBe(ok)
  })
})
