// Registry authentication against real registries on loopback: the Docker
// token protocol (registry → 401 Bearer challenge → token service → JWT the
// registry verifies), htpasswd Basic auth, and blob downloads redirected to
// another host that must never see our Authorization header.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pullImage } from '@warren/orchestrator'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HOST_ARCH, makeImage, makeLayer } from '../helpers/oci-image.js'
import { useRegistry } from '../helpers/registry.js'

const UID_BASE = 100000
const stores: string[] = []
const newStore = () => {
  const d = mkdtempSync(join(tmpdir(), 'warren-oci-store-'))
  stores.push(d)
  return d
}
afterAll(() => {
  for (const d of stores) rmSync(d, { recursive: true, force: true })
})

async function smallImage(body: string) {
  return makeImage({
    layers: [await makeLayer([{ name: 'hello', body }], 'gzip')],
    platform: { os: 'linux', architecture: HOST_ARCH },
  })
}

describe('token auth, blobs redirected to another host (needs root)', () => {
  const registry = useRegistry({
    auth: { kind: 'token', users: { alice: { password: 'right', actions: ['pull'] } } },
    redirectBlobs: true,
  })
  let image: Awaited<ReturnType<typeof smallImage>>
  beforeAll(async () => {
    image = await smallImage('private')
    await registry().pushImage('test/private', 'v1', image)
  })

  it('refuses an anonymous pull clearly', async () => {
    const reg = registry()
    await expect(
      pullImage(`${reg.host}/test/private:v1`, { into: newStore(), uidBase: UID_BASE }),
    ).rejects.toMatchObject({
      code: 'unauthenticated',
      message: expect.stringMatching(
        /test\/private: the registry requires authentication and no credentials were given/,
      ),
    })
  })

  it('refuses a wrong password clearly', async () => {
    const reg = registry()
    await expect(
      pullImage(`${reg.host}/test/private:v1`, {
        into: newStore(),
        uidBase: UID_BASE,
        auth: { username: 'alice', password: 'wrong' },
      }),
    ).rejects.toMatchObject({
      code: 'unauthenticated',
      message: `${reg.host}: the token service refused the username or password of 'alice'`,
    })
  })

  it('pulls with the right password; the blob host never sees the token', async () => {
    const reg = registry()
    await reg.clearRequests()
    const store = newStore()
    const pulled = await pullImage(`${reg.host}/test/private:v1`, {
      into: store,
      uidBase: UID_BASE,
      auth: { username: 'alice', password: 'right' },
    })
    expect(pulled.digest).toBe(image.manifest.digest)
    expect(reg.token?.log.at(-1)).toEqual({
      user: 'alice',
      scope: 'repository:test/private:pull',
      status: 200,
    })
    // The registry answered the blob GETs with redirects to 127.0.0.2...
    const blobGets = (await reg.requests()).filter(
      (r) => r.method === 'GET' && r.path.includes('/blobs/'),
    )
    expect(blobGets.map((r) => r.status)).toEqual([307, 307])
    // ...which served them, without the Authorization header.
    expect(reg.blobRequests).toHaveLength(2)
    expect(reg.blobRequests.every((r) => r.authorization === undefined)).toBe(true)
  })
})

describe('htpasswd Basic auth (needs root)', () => {
  const registry = useRegistry({ auth: { kind: 'htpasswd', users: { bob: 'secret' } } })
  beforeAll(async () => {
    await registry().pushImage('test/basic', 'v1', await smallImage('basic'))
  })

  it('refuses no credentials, and a wrong password, clearly', async () => {
    const reg = registry()
    await expect(
      pullImage(`${reg.host}/test/basic:v1`, { into: newStore(), uidBase: UID_BASE }),
    ).rejects.toThrow(/the registry requires authentication and no credentials were given/)
    await expect(
      pullImage(`${reg.host}/test/basic:v1`, {
        into: newStore(),
        uidBase: UID_BASE,
        auth: { username: 'bob', password: 'nope' },
      }),
    ).rejects.toMatchObject({
      code: 'unauthenticated',
      message: expect.stringContaining("the registry refused the credentials of 'bob'"),
    })
  })

  it('pulls with the right password', async () => {
    const reg = registry()
    const pulled = await pullImage(`${reg.host}/test/basic:v1`, {
      into: newStore(),
      uidBase: UID_BASE,
      auth: { username: 'bob', password: 'secret' },
    })
    expect(pulled.layers).toHaveLength(1)
  })
})
