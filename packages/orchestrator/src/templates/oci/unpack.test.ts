import { execFileSync } from 'node:child_process'
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import tar from 'tar-stream'
import { afterEach, describe, expect, it } from 'vitest'
import { DiskBudget } from './disk-limits.js'
import { entryPath, unpackLayer } from './unpack.js'

type Entry = Parameters<tar.Pack['entry']>[0] & { body?: string | Buffer }

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack()
  for (const { body, ...h } of entries) pack.entry(h, body ?? '')
  pack.finalize()
  const chunks: Buffer[] = []
  for await (const c of pack) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

function xattr(path: string, name: string): string | undefined {
  try {
    return execFileSync('getfattr', ['-h', '--only-values', '-n', name, path], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
  } catch {
    return undefined
  }
}

const BASE = 100000
const T = new Date('2020-01-02T03:04:05Z')

describe('entryPath', () => {
  it.each([
    ['./a/b', 'a/b'],
    ['a//b/./c/', 'a/b/c'],
    ['./', ''],
  ])('%s → %s', (name, want) => expect(entryPath(name)).toBe(want))

  it.each(['/etc/passwd', '../x', 'a/../../x', 'a/..', 'a\0b'])('refuses %s', (name) =>
    expect(() => entryPath(name)).toThrow(/refusing layer entry/),
  )
})

describe('unpackLayer (needs root)', () => {
  const dirs: string[] = []
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'unpack-'))
    dirs.push(d)
    mkdirSync(join(d, 'layer'))
    return d
  }
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('writes files, links and owners in overlayfs form', async () => {
    const d = fresh()
    const root = join(d, 'layer')
    const layer = await tarOf([
      { name: './', type: 'directory', mode: 0o755, mtime: T },
      { name: 'usr/', type: 'directory', mode: 0o755, mtime: T },
      { name: 'usr/bin/', type: 'directory', mode: 0o755, mtime: T },
      { name: 'usr/bin/sudo', mode: 0o4755, mtime: T, body: 'sudo' },
      { name: 'usr/bin/sudoedit', type: 'link', linkname: 'usr/bin/sudo' },
      { name: 'home/user/notes', uid: 1000, gid: 1000, mode: 0o600, mtime: T, body: 'hi' },
      { name: 'bin', type: 'symlink', linkname: 'usr/bin', mtime: T },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'etc/.wh.motd', body: '' },
      { name: 'var/cache/.wh..wh..opq', body: '' },
      { name: 'opt/old/', type: 'directory', mode: 0o755 },
      { name: 'opt/.wh.old', body: '' },
      { name: 'caps', mode: 0o755, body: 'x', pax: { 'SCHILY.xattr.user.note': 'kept' } },
      {
        name: 'forged',
        body: 'x',
        pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc' },
      },
      { name: 'twice', body: 'first' },
      { name: 'twice', body: 'second' },
    ])

    const stats = await unpackLayer(Readable.from([layer]), root, { uidBase: BASE })

    const sudo = lstatSync(join(root, 'usr/bin/sudo'))
    expect([sudo.uid, sudo.gid, sudo.mode & 0o7777]).toEqual([BASE, BASE, 0o4755])
    expect(sudo.mtime.getTime()).toBe(T.getTime())
    expect(lstatSync(join(root, 'usr/bin/sudoedit')).ino).toBe(sudo.ino)
    const notes = lstatSync(join(root, 'home/user/notes'))
    expect([notes.uid, notes.mode & 0o777]).toEqual([BASE + 1000, 0o600])
    expect(readFileSync(join(root, 'home/user/notes'), 'utf8')).toBe('hi')
    expect(readlinkSync(join(root, 'bin'))).toBe('usr/bin')
    expect(lstatSync(join(root, 'usr')).mtime.getTime()).toBe(T.getTime())
    expect(existsSync(join(root, 'dev/null'))).toBe(false)
    expect(stats.skipped).toEqual(['dev/null (character-device)'])
    const wh = lstatSync(join(root, 'etc/motd'))
    expect([wh.isCharacterDevice(), wh.rdev]).toEqual([true, 0])
    expect(xattr(join(root, 'var/cache'), 'trusted.overlay.opaque')).toBe('y')
    // Deleted from below and recreated here: an opaque directory, not a whiteout.
    expect(lstatSync(join(root, 'opt/old')).isDirectory()).toBe(true)
    expect(xattr(join(root, 'opt/old'), 'trusted.overlay.opaque')).toBe('y')
    expect(xattr(join(root, 'caps'), 'user.note')).toBe('kept')
    expect(xattr(join(root, 'forged'), 'trusted.overlay.redirect')).toBeUndefined()
    expect(stats.xattrWarnings).toEqual(['forged: trusted.overlay.redirect not kept'])
    expect(readFileSync(join(root, 'twice'), 'utf8')).toBe('second')
    expect(stats.whiteouts).toBe(1)
    expect(stats.opaqueDirs).toBe(2)
  })

  it.each<[string, Entry[]]>([
    ['an absolute path', [{ name: '/etc/passwd', body: 'x' }]],
    ['a .. path', [{ name: 'a/../../outside/x', body: 'x' }]],
    ['a file in place of the root', [{ name: './', type: 'file', body: 'x' }]],
    [
      'a write through a symlink',
      [
        { name: 'evil', type: 'symlink', linkname: '../outside' },
        { name: 'evil/x', body: 'x' },
      ],
    ],
    ['a hard link out of the layer', [{ name: 'l', type: 'link', linkname: '../outside/secret' }]],
    [
      'a hard link through a symlink',
      [
        { name: 'evil', type: 'symlink', linkname: '../outside' },
        { name: 'l', type: 'link', linkname: 'evil/secret' },
      ],
    ],
    [
      'a whiteout through a symlink',
      [
        { name: 'evil', type: 'symlink', linkname: '../outside' },
        { name: 'evil/.wh.secret', body: '' },
      ],
    ],
  ])('refuses %s and writes nothing outside', async (_what, entries) => {
    const d = fresh()
    mkdirSync(join(d, 'outside'))
    execFileSync('sh', ['-c', `echo secret > ${join(d, 'outside/secret')}`])
    const layer = await tarOf(entries)
    await expect(
      unpackLayer(Readable.from([layer]), join(d, 'layer'), { uidBase: BASE }),
    ).rejects.toThrow(/refusing/)
    expect(readdirSync(join(d, 'outside'))).toEqual(['secret'])
    expect(lstatSync(join(d, 'outside/secret')).nlink).toBe(1)
  })

  it('does not follow a symlink that replaced a directory before its whiteouts are made', async () => {
    const d = fresh()
    mkdirSync(join(d, 'outside'))
    const layer = await tarOf([
      { name: 'a/.wh.x', body: '' },
      { name: 'a/.wh..wh..opq', body: '' },
      { name: 'a', type: 'symlink', linkname: '../outside' },
    ])
    await unpackLayer(Readable.from([layer]), join(d, 'layer'), { uidBase: BASE })
    expect(readdirSync(join(d, 'outside'))).toEqual([])
    expect(xattr(join(d, 'outside'), 'trusted.overlay.opaque')).toBeUndefined()
  })

  /** A tar that arrives in small chunks over many turns of the event loop, as a download does. */
  const trickle = (data: Buffer) =>
    Readable.from(
      (async function* () {
        for (let off = 0; off < data.length; off += 16_384) {
          await new Promise((r) => setImmediate(r))
          yield data.subarray(off, off + 16_384)
        }
      })(),
    )
  const MiB = 2 ** 20

  it.each<[string, Entry[]]>([
    ['one big file', [{ name: 'big', body: Buffer.alloc(3 * MiB) }]],
    [
      'many empty files (each an inode and a block)',
      Array.from({ length: 300 }, (_, i) => ({ name: `f${i}`, body: '' })),
    ],
  ])('stops a layer past its size limit as it streams: %s', async (_what, entries) => {
    const d = fresh()
    const budget = new DiskBudget({ maxLayerBytes: MiB })
    await expect(
      unpackLayer(trickle(await tarOf(entries)), join(d, 'layer'), { uidBase: BASE, budget }),
    ).rejects.toThrow('it unpacks to more than 1 MiB, the limit for one image layer')
  })

  it('stops when the disk is down to its reserve', async () => {
    const d = fresh()
    let checks = 0
    const budget = new DiskBudget({
      checkFree: () => {
        if (++checks > 1) throw new Error('disk down to its reserve')
      },
    })
    const layer = await tarOf([{ name: 'big', body: Buffer.alloc(65 * MiB) }])
    await expect(
      unpackLayer(trickle(layer), join(d, 'layer'), { uidBase: BASE, budget }),
    ).rejects.toThrow('disk down to its reserve')
  })
})
