import { getSignature } from 'e2b'
import { describe, expect, it } from 'vitest'
import { fileSignature, signedFilesRequest, verifyFileSignature } from './file-signature.js'

describe('file signatures', () => {
  it.each([
    { path: '/home/user/a.txt', operation: 'read', user: 'user', expirationInSeconds: undefined },
    { path: 'rel/b.txt', operation: 'write', user: undefined, expirationInSeconds: undefined },
    { path: '', operation: 'write', user: 'root', expirationInSeconds: 60 },
  ] as const)('matches the pinned SDK: $path $operation', async (c) => {
    const sdk = await getSignature({ ...c, envdAccessToken: 'secret' })
    expect(
      fileSignature({
        path: c.path,
        operation: c.operation,
        user: c.user ?? '',
        token: 'secret',
        expiration: sdk.expiration ?? undefined,
      }),
    ).toBe(sdk.signature)
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

describe('signedFilesRequest', () => {
  it.each([
    [
      'GET',
      '/files?path=a.txt&username=user&signature=v1_x&signature_expiration=9',
      { path: 'a.txt', operation: 'read', user: 'user', signature: 'v1_x', expiration: '9' },
    ],
    [
      'POST',
      '/files?signature=v1_y',
      { path: '', operation: 'write', user: '', signature: 'v1_y', expiration: undefined },
    ],
    ['GET', '/files?path=a.txt', undefined],
    ['GET', '/files?signature=', undefined],
    ['DELETE', '/files?signature=v1_x', undefined],
    ['GET', '/filesystem?signature=v1_x', undefined],
    ['GET', '/health', undefined],
    ['GET', undefined, undefined],
  ])('%s %s', (method, url, want) => {
    expect(signedFilesRequest(method, url)).toEqual(want)
  })
})
