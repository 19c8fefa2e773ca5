import { describe, expect, it } from 'vitest'
import type { ImageIndex } from './manifest.js'
import { choosePlatform, platformMatches } from './platform.js'

const entry = (n: number, platform?: { os: string; architecture: string; variant?: string }) => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${String(n).repeat(64)}`,
  size: 1,
  ...(platform ? { platform } : {}),
})

const index: ImageIndex = {
  schemaVersion: 2,
  manifests: [
    entry(1, { os: 'unknown', architecture: 'unknown' }),
    entry(2, { os: 'linux', architecture: 'arm', variant: 'v6' }),
    entry(3, { os: 'linux', architecture: 'arm', variant: 'v7' }),
    entry(4, { os: 'linux', architecture: 'arm64' }),
    entry(5, { os: 'windows', architecture: 'amd64' }),
    entry(6, { os: 'linux', architecture: 'amd64' }),
    entry(7),
  ],
}

describe('choosePlatform', () => {
  it.each([
    [{ os: 'linux', architecture: 'amd64' }, 6],
    [{ os: 'linux', architecture: 'arm64', variant: 'v8' }, 4],
    [{ os: 'linux', architecture: 'arm', variant: 'v7' }, 3],
    [{ os: 'linux', architecture: 'arm', variant: 'v6' }, 2],
  ])('%j → entry %i', (want, n) => {
    expect(choosePlatform(index, want, 'img').digest).toBe(`sha256:${String(n).repeat(64)}`)
  })

  it('names what is offered when nothing fits', () => {
    expect(() => choosePlatform(index, { os: 'linux', architecture: 's390x' }, 'img')).toThrow(
      'img has no linux/s390x image (it offers: linux/arm/v6, linux/arm/v7, linux/arm64, windows/amd64, linux/amd64)',
    )
  })

  it('matches arm64 with or without v8', () => {
    expect(
      platformMatches(
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
        { os: 'linux', architecture: 'arm64' },
      ),
    ).toBe(true)
    expect(
      platformMatches(
        { os: 'linux', architecture: 'arm', variant: 'v6' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
      ),
    ).toBe(false)
  })
})
