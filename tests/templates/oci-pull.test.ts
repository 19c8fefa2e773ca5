// Pulling images from a real registry (Debian's docker-registry on loopback)
// into the layer store: overlay semantics of the unpacked layers, platform
// choice, compression, verification by digest, and the cache. Privileged:
// mounts overlayfs, writes trusted.* xattrs.
import { execFileSync } from 'node:child_process'
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pullImage } from '@warren/orchestrator'
import { afterAll, describe, expect, it } from 'vitest'
import { HOST_ARCH, makeImage, makeIndex, makeLayer, OTHER_ARCH } from '../helpers/oci-image.js'
import { useRegistry } from '../helpers/registry.js'

const UID_BASE = 100000
const registry = useRegistry()
const stores: string[] = []
const newStore = () => {
  const d = mkdtempSync(join(tmpdir(), 'warren-oci-store-'))
  stores.push(d)
  return d
}
afterAll(() => {
  for (const d of stores) rmSync(d, { recursive: true, force: true })
})

/** Every path below `root`: type, and content or link target; owners and modes where asked. */
function tree(root: string): string[] {
  const out: string[] = []
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name
      const st = lstatSync(join(root, p))
      if (st.isDirectory()) {
        out.push(`${p}/`)
        walk(p)
      } else if (st.isSymbolicLink()) out.push(`${p} -> ${readlinkSync(join(root, p))}`)
      else out.push(`${p} = ${readFileSync(join(root, p), 'utf8')}`)
    }
  }
  walk('')
  return out
}

/** Mounts the layers (top first) as a read-only overlay and hands over the merged tree. */
function withOverlay<T>(store: string, layers: string[], fn: (root: string) => T): T {
  const mnt = mkdtempSync(join(tmpdir(), 'warren-oci-mnt-'))
  const lower = layers.map((l) => join(store, l)).join(':')
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lower}`, mnt])
  try {
    return fn(mnt)
  } finally {
    execFileSync('umount', [mnt])
    rmSync(mnt, { recursive: true, force: true })
  }
}

/** The layered image of the first test: gzip, zstd and plain tar layers. */
async function layeredImage() {
  const dir = { type: 'directory' as const, mode: 0o755 }
  const base = await makeLayer(
    [
      { name: 'bin/', ...dir },
      { name: 'bin/tool', mode: 0o755, body: 'tool' },
      { name: 'data/', ...dir },
      { name: 'data/keep', body: 'kept' },
      { name: 'etc/', ...dir },
      { name: 'etc/config', body: 'v1' },
      { name: 'etc/remove-me', body: 'old' },
      { name: 'gone/', ...dir },
      { name: 'gone/x', body: 'x' },
      { name: 'usr/bin/sudo', mode: 0o4755, body: 'sudo' },
      { name: 'var/cache/', ...dir },
      { name: 'var/cache/a', body: 'a' },
      { name: 'var/cache/sub/b', body: 'b' },
    ],
    'gzip',
  )
  const middle = await makeLayer(
    [
      { name: 'etc/.wh.remove-me' },
      { name: 'etc/config', body: 'v2' },
      { name: 'var/cache/.wh..wh..opq' },
      { name: 'var/cache/new', body: 'fresh' },
      { name: '.wh.gone' },
    ],
    'zstd',
  )
  const top = await makeLayer(
    [
      { name: 'gone/new', body: 'back' },
      { name: 'l3/file', body: 'linked' },
      { name: 'l3/hard', type: 'link', linkname: 'l3/file' },
      { name: 'l3/sym', type: 'symlink', linkname: 'file' },
    ],
    'none',
  )
  return makeImage({
    layers: [base, middle, top],
    config: {
      Env: ['PATH=/usr/bin:/bin', 'LANG=C.UTF-8'],
      Cmd: ['/bin/tool'],
      WorkingDir: '/data',
    },
    platform: { os: 'linux', architecture: HOST_ARCH },
  })
}

describe('pullImage from a loopback registry (needs root)', () => {
  it('unpacks gzip, zstd and plain layers whose overlay stack shows exactly the image', async () => {
    const reg = registry()
    const image = await layeredImage()
    await reg.pushImage('test/layers', 'v1', image)
    const store = newStore()

    const pulled = await pullImage(`${reg.host}/test/layers:v1`, { into: store, uidBase: UID_BASE })

    expect(pulled.reference).toBe(`${reg.host}/test/layers:v1`)
    expect(pulled.digest).toBe(image.manifest.digest)
    expect(pulled.layers).toHaveLength(3)
    // Top first, named by diff id.
    expect(pulled.layers[0]).toContain(image.layers[2]!.diffId.slice('sha256:'.length))
    expect(pulled.config).toEqual({
      env: ['PATH=/usr/bin:/bin', 'LANG=C.UTF-8'],
      cmd: ['/bin/tool'],
      workdir: '/data',
    })
    withOverlay(store, pulled.layers, (root) => {
      expect(tree(root)).toEqual([
        'bin/',
        'bin/tool = tool',
        'data/',
        'data/keep = kept',
        'etc/',
        'etc/config = v2',
        'gone/',
        'gone/new = back',
        'l3/',
        'l3/file = linked',
        'l3/hard = linked',
        'l3/sym -> file',
        'usr/',
        'usr/bin/',
        'usr/bin/sudo = sudo',
        'var/',
        'var/cache/',
        'var/cache/new = fresh',
      ])
      const sudo = lstatSync(join(root, 'usr/bin/sudo'))
      expect([sudo.uid, sudo.gid, sudo.mode & 0o7777]).toEqual([UID_BASE, UID_BASE, 0o4755])
      expect(lstatSync(join(root, 'l3/hard')).ino).toBe(lstatSync(join(root, 'l3/file')).ino)
    })
  })

  it('chooses the linux/<this machine> manifest from a multi-platform index', async () => {
    const reg = registry()
    for (const format of ['oci', 'docker'] as const) {
      const images = await Promise.all(
        [OTHER_ARCH, HOST_ARCH].map(async (architecture) =>
          makeImage({
            format,
            layers: [await makeLayer([{ name: 'arch', body: architecture }], 'gzip', format)],
            platform: {
              os: 'linux',
              architecture,
              ...(architecture === 'arm64' ? { variant: 'v8' } : {}),
            },
          }),
        ),
      )
      const index = makeIndex(images, format)
      await reg.pushIndex('test/multi', format, index, images)
      const store = newStore()

      const pulled = await pullImage(`${reg.host}/test/multi:${format}`, {
        into: store,
        uidBase: UID_BASE,
      })
      expect(pulled.digest).toBe(index.digest)
      expect(pulled.manifestDigest).toBe(images[1]!.manifest.digest)
      expect(readFileSync(join(store, pulled.layers[0]!, 'arch'), 'utf8')).toBe(HOST_ARCH)

      const other = await pullImage(`${reg.host}/test/multi@${index.digest}`, {
        into: store,
        uidBase: UID_BASE,
        platform: { os: 'linux', architecture: OTHER_ARCH },
      })
      expect(readFileSync(join(store, other.layers[0]!, 'arch'), 'utf8')).toBe(OTHER_ARCH)
      await expect(
        pullImage(`${reg.host}/test/multi:${format}`, {
          into: store,
          uidBase: UID_BASE,
          platform: { os: 'linux', architecture: 's390x' },
        }),
      ).rejects.toThrow(/has no linux\/s390x image \(it offers: linux\/\w+.*, linux\/\w+/)
    }
  })

  it('pulls again without downloading anything, and shares concurrent downloads', async () => {
    const reg = registry()
    const image = await layeredImage()
    await reg.pushImage('test/cache', 'v1', image)
    const store = newStore()
    const ref = `${reg.host}/test/cache:v1`
    await reg.clearRequests()

    // Two pulls at once: each blob crosses the wire once.
    await Promise.all([
      pullImage(ref, { into: store, uidBase: UID_BASE }),
      pullImage(ref, { into: store, uidBase: UID_BASE }),
    ])
    const first = (await reg.requests()).filter(
      (r) => r.method === 'GET' && r.path.includes('/blobs/'),
    )
    expect(first.map((r) => r.path).sort()).toEqual(
      [image.config, ...image.layers].map((b) => `/v2/test/cache/blobs/${b.digest}`).sort(),
    )

    await reg.clearRequests()
    const progress: string[] = []
    const again = await pullImage(ref, {
      into: store,
      uidBase: UID_BASE,
      onProgress: (p) => progress.push(p.phase === 'layer' ? `layer cached=${p.cached}` : p.phase),
    })
    expect(progress).toEqual([
      'resolve',
      'layers',
      'layer cached=true',
      'layer cached=true',
      'layer cached=true',
      'done',
    ])
    // A tag is asked again (it may have moved), by HEAD: no body crosses.
    expect(await reg.requests()).toEqual([
      { method: 'HEAD', path: '/v2/test/cache/manifests/v1', status: 200 },
    ])
    await reg.clearRequests()
    await pullImage(`${reg.host}/test/cache@${again.digest}`, { into: store, uidBase: UID_BASE })
    expect(await reg.requests()).toEqual([])
    expect(readdirSync(join(store, 'tmp'))).toEqual([])
  })

  it('refuses a blob altered in the registry after the push, and keeps nothing of it', async () => {
    const reg = registry()
    const image = makeImage({
      layers: [await makeLayer([{ name: 'payload', body: 'x'.repeat(100_000) }], 'gzip')],
      platform: { os: 'linux', architecture: HOST_ARCH },
    })
    await reg.pushImage('test/corrupt', 'v1', image)
    const file = reg.blobFile(image.layers[0]!.digest)
    const fd = openSync(file, 'r+')
    const byte = Buffer.alloc(1)
    readSync(fd, byte, 0, 1, 40)
    writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, 40)
    closeSync(fd)
    const store = newStore()

    await expect(
      pullImage(`${reg.host}/test/corrupt:v1`, { into: store, uidBase: UID_BASE }),
    ).rejects.toThrow(`layer ${image.layers[0]!.digest} does not match its digest`)
    expect(existsSync(join(store, 'layers'))).toBe(false)
    expect(readdirSync(join(store, 'tmp'))).toEqual([])
  })

  it('refuses a layer whose content is not what the image config says (diff id)', async () => {
    const reg = registry()
    const honest = await makeLayer([{ name: 'a', body: 'a' }], 'zstd')
    const liar = { ...honest, diffId: (await makeLayer([{ name: 'b', body: 'b' }], 'none')).diffId }
    const image = makeImage({ layers: [liar], platform: { os: 'linux', architecture: HOST_ARCH } })
    await reg.pushImage('test/liar', 'v1', image)
    const store = newStore()
    await expect(
      pullImage(`${reg.host}/test/liar:v1`, { into: store, uidBase: UID_BASE }),
    ).rejects.toThrow(/the uncompressed layer .* does not match its digest/)
    expect(existsSync(join(store, 'layers'))).toBe(false)
    expect(readdirSync(join(store, 'tmp'))).toEqual([])
  })

  it('refuses a hostile layer without writing outside the store', async () => {
    const reg = registry()
    const image = makeImage({
      layers: [
        await makeLayer([
          { name: 'innocent', body: 'ok' },
          { name: 'escape', type: 'symlink', linkname: '/tmp' },
          { name: 'escape/warren-oci-pwned', body: 'pwned' },
        ]),
      ],
      platform: { os: 'linux', architecture: HOST_ARCH },
    })
    await reg.pushImage('test/hostile', 'v1', image)
    const store = newStore()
    await expect(
      pullImage(`${reg.host}/test/hostile:v1`, { into: store, uidBase: UID_BASE }),
    ).rejects.toThrow(/refusing layer entries below 'escape'/)
    expect(existsSync('/tmp/warren-oci-pwned')).toBe(false)
    expect(existsSync(join(store, 'layers'))).toBe(false)
    expect(readdirSync(join(store, 'tmp'))).toEqual([])
  })

  it('says clearly what is missing', async () => {
    const reg = registry()
    const store = newStore()
    await expect(
      pullImage(`${reg.host}/test/nothing:v1`, { into: store, uidBase: UID_BASE }),
    ).rejects.toMatchObject({
      code: 'not_found',
      message: `${reg.host}/test/nothing:v1: not found at the registry`,
    })
    await expect(pullImage('Not A Ref', { into: store, uidBase: UID_BASE })).rejects.toThrow(
      /invalid image reference/,
    )
  })
})
