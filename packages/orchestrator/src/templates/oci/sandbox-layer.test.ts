import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import tar from 'tar-stream'
import { afterEach, describe, expect, it } from 'vitest'
import { ImageView } from './image-view.js'
import { hostPlatform } from './platform.js'
import { prepareSandboxLayer } from './sandbox-layer.js'
import { unpackLayer } from './unpack.js'

type Entry = Parameters<tar.Pack['entry']>[0] & { body?: string }
const BASE = 100000
const GLIBC =
  hostPlatform().architecture === 'arm64'
    ? 'lib/ld-linux-aarch64.so.1'
    : 'lib64/ld-linux-x86-64.so.2'
const MUSL =
  hostPlatform().architecture === 'arm64' ? 'lib/ld-musl-aarch64.so.1' : 'lib/ld-musl-x86_64.so.1'

/** Unpacks each entry list as one layer of a store; returns the layers top first. */
async function image(store: string, layers: Entry[][]): Promise<string[]> {
  const rels: string[] = []
  for (const [i, entries] of layers.entries()) {
    const pack = tar.pack()
    for (const { body, ...h } of entries) pack.entry(h, body ?? '')
    pack.finalize()
    const rel = `layers/test/${i}`
    mkdirSync(join(store, rel), { recursive: true })
    await unpackLayer(Readable.from(pack as AsyncIterable<Buffer>), join(store, rel), {
      uidBase: BASE,
    })
    rels.unshift(rel)
  }
  return rels
}

const DEBIAN: Entry[] = [
  { name: 'etc/', type: 'directory', mode: 0o755 },
  {
    name: 'etc/passwd',
    body: 'root:x:0:0:root:/root:/bin/bash\nnode:x:1000:1000::/home/node:/bin/bash\n',
  },
  { name: 'etc/group', body: 'root:x:0:\nsudo:x:27:\nshadow:x:42:\nnode:x:1000:\n' },
  { name: 'etc/shadow', mode: 0o640, gid: 42, body: 'root:*:1:0:99999:7:::\n' },
  {
    name: 'etc/sudoers',
    mode: 0o440,
    body: 'root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n',
  },
  { name: 'etc/skel/.bashrc', body: 'PS1=x\n' },
  { name: 'home/', type: 'directory', mode: 0o755 },
  { name: 'usr/bin/sudo', mode: 0o4755, body: 'sudo' },
  { name: 'usr/bin/bash', mode: 0o755, body: 'bash' },
  { name: 'bin', type: 'symlink', linkname: 'usr/bin' },
  { name: `usr/${GLIBC}`, mode: 0o755, body: 'ld' },
  { name: GLIBC.split('/')[0]!, type: 'symlink', linkname: `usr/${GLIBC.split('/')[0]}` },
  { name: 'usr/lib/x86_64-linux-gnu/libstdc++.so.6', body: 'x' },
  { name: 'usr/lib/aarch64-linux-gnu/libstdc++.so.6', body: 'x' },
]

describe('prepareSandboxLayer (needs root)', () => {
  const dirs: string[] = []
  const store = () => {
    const d = mkdtempSync(join(tmpdir(), 'sandbox-layer-'))
    dirs.push(d)
    return d
  }
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('adds `user` with sudo, a home and the mount points to a Debian-like image', async () => {
    const into = store()
    const layers = await image(into, [DEBIAN])
    const got = await prepareSandboxLayer({ into, layers, uidBase: BASE })

    expect(got.user).toEqual({
      name: 'user',
      uid: 1001,
      gid: 1001,
      home: '/home/user',
      shell: '/bin/bash',
      created: true,
    })
    expect([got.libc, got.envdRunnable, got.notes]).toEqual(['glibc', true, []])
    const view = new ImageView([got.layer, ...layers].map((l) => join(into, l)))
    const text = (p: string) => view.readFile(p)?.toString()
    expect(text('/etc/passwd')).toContain('\nuser:x:1001:1001::/home/user:/bin/bash\n')
    expect(text('/etc/group')).toContain('\nsudo:x:27:user\n')
    expect(text('/etc/shadow')).toMatch(/\nuser:!:\d+:0:99999:7:::\n$/)
    expect(text('/etc/sudoers.d/user')).toBe('user ALL=(ALL:ALL) NOPASSWD: ALL\n')
    expect(text('/home/user/.bashrc')).toBe('PS1=x\n')
    const st = (p: string) => {
      const s = view.stat(p)!.st
      return [s.uid, s.gid, s.mode & 0o7777]
    }
    expect(st('/etc/shadow')).toEqual([BASE, BASE + 42, 0o640])
    expect(st('/etc/sudoers.d/user')).toEqual([BASE, BASE, 0o440])
    expect(st('/home/user')).toEqual([BASE + 1001, BASE + 1001, 0o755])
    expect(view.stat('/opt/warren/envd')?.st.isDirectory()).toBe(true)
    expect(view.stat('/opt/warren/bin/node')?.st.isFile()).toBe(true)

    // Made once per image: the same layer again, untouched.
    const mtime = statSync(join(into, got.layer, 'etc/passwd')).mtimeMs
    const again = await prepareSandboxLayer({ into, layers, uidBase: BASE })
    expect(again.layer).toBe(got.layer)
    expect(statSync(join(into, got.layer, 'etc/passwd')).mtimeMs).toBe(mtime)
  })

  it('says what a musl image without sudo lacks', async () => {
    const into = store()
    const layers = await image(into, [
      [
        { name: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/ash\n' },
        { name: 'etc/group', body: 'root:x:0:\n' },
        { name: MUSL, mode: 0o755, body: 'ld' },
      ],
    ])
    const got = await prepareSandboxLayer({ into, layers, uidBase: BASE })
    expect(got.user).toMatchObject({ uid: 1000, gid: 1000, shell: '/bin/sh' })
    expect(got.libc).toBe('musl')
    expect(got.envdRunnable).toBe(false)
    expect(got.notes).toEqual([
      'a musl image (Alpine?): envd runs on the host Node, which needs glibc',
      'sudo is not installed in the image: the sudoers entry waits for it',
    ])
  })

  it('writes through the image’s own symlinks and respects whiteouts', async () => {
    const into = store()
    // /etc lives elsewhere (a symlink), and an upper layer deleted the old user's home.
    const layers = await image(into, [
      [
        ...DEBIAN.filter((e) => !e.name.startsWith('etc')),
        {
          name: 'data/etc/passwd',
          body: 'root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n',
        },
        { name: 'data/etc/group', body: 'root:x:0:\nuser:x:1000:\n' },
        { name: 'etc', type: 'symlink', linkname: '/data/etc' },
        { name: 'home/user/old', body: 'x' },
      ],
      [{ name: 'home/.wh.user' }],
    ])
    const got = await prepareSandboxLayer({ into, layers, uidBase: BASE })
    expect(got.user).toMatchObject({ uid: 1000, created: false })
    expect(readFileSync(join(into, got.layer, 'data/etc/sudoers.d/user'), 'utf8')).toContain(
      'NOPASSWD',
    )
    // The deleted home is made again, owned by the account.
    expect(statSync(join(into, got.layer, 'home/user')).uid).toBe(BASE + 1000)
  })
})
