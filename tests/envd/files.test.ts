import { randomBytes } from 'node:crypto'
import { statSync } from 'node:fs'
import { type FilesystemEvent, FilesystemEventType, FileType, type Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually } from '../helpers/api-client.js'
import { hostPath, initEnvd, ownerOf, type RunningEnvd, sdk, startEnvd } from './harness.js'

const TOKEN = 'files-test-token'
let envd: RunningEnvd
let sbx: Sandbox

beforeAll(async () => {
  envd = await startEnvd()
  expect((await initEnvd(envd, { defaultUser: 'user', accessToken: TOKEN })).status).toBe(204)
  sbx = sdk(envd, TOKEN)
})
afterAll(async () => {
  await envd?.stop()
})

describe('files as user', () => {
  it('writes and reads text, owned by the user', async () => {
    const info = await sbx.files.write('notes/hello.txt', 'hello world')
    expect(info).toMatchObject({
      name: 'hello.txt',
      path: '/home/user/notes/hello.txt',
      type: 'file',
    })
    expect(await sbx.files.read('/home/user/notes/hello.txt')).toBe('hello world')
    expect(ownerOf(hostPath(envd, '/home/user/notes/hello.txt'))).toBe(1000)
    expect(ownerOf(hostPath(envd, '/home/user/notes'))).toBe(1000)
  })

  it('writes and reads binary data, also gzip and streamed', async () => {
    const data = randomBytes(3 << 20)
    await sbx.files.write(
      'bin.dat',
      data.buffer.slice(data.byteOffset, data.byteOffset + data.length),
    )
    const back = await sbx.files.read('bin.dat', { format: 'bytes' })
    expect(Buffer.from(back).equals(data)).toBe(true)
    const gz = await sbx.files.read('bin.dat', { format: 'bytes', gzip: true })
    expect(Buffer.from(gz).equals(data)).toBe(true)
    await sbx.files.write('bin2.dat', new Blob([data]).stream(), { gzip: true })
    expect(Buffer.from(await sbx.files.read('bin2.dat', { format: 'bytes' })).equals(data)).toBe(
      true,
    )
    const empty = await sbx.files.write('empty.txt', '')
    expect(empty.path).toBe('/home/user/empty.txt')
    expect(await sbx.files.read('empty.txt')).toBe('')
  })

  it('writes several files at once', async () => {
    const infos = await sbx.files.write([
      { path: 'multi/a.txt', data: 'A' },
      { path: '/home/user/multi/b.txt', data: 'B' },
      { path: 'multi/deep/c.txt', data: new Blob(['C']) },
    ])
    expect(infos.map((i) => i.path)).toEqual([
      '/home/user/multi/a.txt',
      '/home/user/multi/b.txt',
      '/home/user/multi/deep/c.txt',
    ])
    expect(await sbx.files.read('multi/deep/c.txt')).toBe('C')
  })

  it('lists with depth', async () => {
    await sbx.files.write([
      { path: 'tree/x.txt', data: 'x' },
      { path: 'tree/sub/y.txt', data: 'yy' },
      { path: 'tree/sub/deeper/z.txt', data: 'z' },
    ])
    const one = await sbx.files.list('tree')
    expect(one.map((e) => [e.name, e.type])).toEqual([
      ['sub', FileType.DIR],
      ['x.txt', FileType.FILE],
    ])
    const two = await sbx.files.list('tree', { depth: 2 })
    expect(two.map((e) => e.path).sort()).toEqual([
      '/home/user/tree/sub',
      '/home/user/tree/sub/deeper',
      '/home/user/tree/sub/y.txt',
      '/home/user/tree/x.txt',
    ])
    const y = two.find((e) => e.name === 'y.txt')!
    expect(y).toMatchObject({
      size: 2,
      owner: 'user',
      group: 'user',
      permissions: '-rw-r--r--',
      mode: 0o644,
    })
    await expect(sbx.files.list('tree/x.txt')).rejects.toThrow(/not a directory/)
    await expect(sbx.files.list('no-such-dir')).rejects.toThrow()
  })

  it('checks existence and gets info with metadata', async () => {
    expect(await sbx.files.exists('tree/x.txt')).toBe(true)
    expect(await sbx.files.exists('tree/nope.txt')).toBe(false)
    const written = await sbx.files.write('meta.txt', 'm', {
      metadata: { Author: 'alice', purpose: 'test' },
    })
    expect(written.metadata).toEqual({ author: 'alice', purpose: 'test' })
    const info = await sbx.files.getInfo('meta.txt')
    expect(info).toMatchObject({
      name: 'meta.txt',
      type: FileType.FILE,
      path: '/home/user/meta.txt',
      size: 1,
      owner: 'user',
      metadata: { author: 'alice', purpose: 'test' },
    })
    expect(info.modifiedTime).toBeInstanceOf(Date)
    expect(Math.abs(info.modifiedTime!.getTime() - Date.now())).toBeLessThan(60_000)
    await sbx.files.write('meta.txt', 'm2')
    expect((await sbx.files.getInfo('meta.txt')).metadata).toBeUndefined()
    await expect(sbx.files.getInfo('missing.txt')).rejects.toThrow(/no such file/)
  })

  it('reports symlinks with their target', async () => {
    await sbx.commands.run('ln -sfn /home/user/tree /home/user/link')
    const info = await sbx.files.getInfo('link')
    expect(info).toMatchObject({
      type: FileType.DIR,
      symlinkTarget: '/home/user/tree',
      permissions: 'Lrwxrwxrwx',
    })
  })

  it('makes directories, renames and removes', async () => {
    expect(await sbx.files.makeDir('made/a/b')).toBe(true)
    expect(await sbx.files.makeDir('made/a/b')).toBe(false)
    expect(ownerOf(hostPath(envd, '/home/user/made/a'))).toBe(1000)
    await sbx.files.write('made/file.txt', 'f')
    const moved = await sbx.files.rename('made/file.txt', 'made/a/renamed.txt')
    expect(moved).toMatchObject({ name: 'renamed.txt', path: '/home/user/made/a/renamed.txt' })
    expect(await sbx.files.exists('made/file.txt')).toBe(false)
    await expect(sbx.files.rename('made/missing', 'made/x')).rejects.toThrow(/no such file/)
    await sbx.files.remove('made')
    expect(await sbx.files.exists('made')).toBe(false)
    // As in E2B, removing what is not there succeeds.
    await sbx.files.remove('made')
    await expect(sbx.files.read('made/a/renamed.txt')).rejects.toThrow(/does not exist/)
  })

  // E2B envd acts as root and hands what it creates to the user. (Only the
  // scratch /root and /home of this harness: envd runs on the host here.)
  it('acts as root for the user: writes where the user could not, and gives it to them', async () => {
    const info = await sbx.files.write('/root/deep/er/secret.txt', 'x')
    expect(info.path).toBe('/root/deep/er/secret.txt')
    for (const p of ['/root/deep', '/root/deep/er', '/root/deep/er/secret.txt'])
      expect(ownerOf(hostPath(envd, p)), p).toBe(1000)
    expect(ownerOf(hostPath(envd, '/root'))).toBe(0)
    expect(statSync(hostPath(envd, '/root/deep')).mode & 0o777).toBe(0o755)
    expect(statSync(hostPath(envd, '/root/deep/er/secret.txt')).mode & 0o777).toBe(0o644)
    expect(await sbx.files.makeDir('/root/made/here')).toBe(true)
    expect(ownerOf(hostPath(envd, '/root/made/here'))).toBe(1000)
    expect((await sbx.files.list('/root')).map((e) => e.name)).toContain('deep')
    await sbx.files.write('/root/owned-by-root.txt', 'r', { user: 'root' })
    expect(ownerOf(hostPath(envd, '/root/owned-by-root.txt'))).toBe(0)
    expect(await sbx.files.read('/root/owned-by-root.txt')).toBe('r')
    // Overwriting hands the file to the writer, as E2B's envd does.
    await sbx.files.write('/root/owned-by-root.txt', 'u')
    expect(ownerOf(hostPath(envd, '/root/owned-by-root.txt'))).toBe(1000)
    await sbx.files.rename('/root/owned-by-root.txt', '/root/new/place.txt')
    expect(ownerOf(hostPath(envd, '/root/new'))).toBe(1000)
    await sbx.files.remove('/root/new')
    expect(await sbx.files.exists('/root/new')).toBe(false)
    // A file where a directory is needed is refused, and nothing is made.
    await expect(sbx.files.write('/root/deep/er/secret.txt/inner.txt', 'x')).rejects.toThrow(
      /path is a file/,
    )
  })
})

describe('files as root', () => {
  it('writes anywhere, owned by root, and resolves relative paths to /root', async () => {
    const info = await sbx.files.write('rootfile.txt', 'r', { user: 'root' })
    expect(info.path).toBe('/root/rootfile.txt')
    expect(ownerOf(hostPath(envd, '/root/rootfile.txt'))).toBe(0)
    expect(await sbx.files.read('rootfile.txt', { user: 'root' })).toBe('r')
    expect((await sbx.files.getInfo('/root/rootfile.txt', { user: 'root' })).owner).toBe('root')
    expect((await sbx.files.list('/root', { user: 'root' })).map((e) => e.name)).toContain(
      'rootfile.txt',
    )
    await sbx.files.rename('/root/rootfile.txt', '/root/moved.txt', { user: 'root' })
    await sbx.files.remove('/root/moved.txt', { user: 'root' })
    expect(await sbx.files.exists('/root/moved.txt', { user: 'root' })).toBe(false)
  })
})

describe('watchDir', () => {
  it('reports events recursively with entries', async () => {
    await sbx.files.makeDir('watched/sub')
    const events: FilesystemEvent[] = []
    const handle = await sbx.files.watchDir(
      'watched',
      (e) => {
        events.push(e)
      },
      { recursive: true, includeEntry: true },
    )
    const seen = (name: string, type: FilesystemEventType) =>
      events.some((e) => e.name === name && e.type === type)
    await sbx.files.write('watched/top.txt', 'a')
    await sbx.files.write('watched/sub/inner.txt', 'b')
    await sbx.files.makeDir('watched/sub/newdir')
    // envd watches a new directory before it reports it: then files in it count.
    await eventually('the new directory is reported', () =>
      seen('sub/newdir', FilesystemEventType.CREATE),
    )
    await sbx.files.write('watched/sub/newdir/deep.txt', 'c')
    await sbx.files.rename('watched/top.txt', 'watched/top2.txt')
    await sbx.commands.run('chmod 600 ~/watched/top2.txt')
    await sbx.files.remove('watched/sub/inner.txt')
    // The last change made; by then every earlier one has been reported.
    await eventually('the removal is reported', () =>
      seen('sub/inner.txt', FilesystemEventType.REMOVE),
    )
    await handle.stop()
    expect(seen('top.txt', FilesystemEventType.CREATE)).toBe(true)
    expect(seen('top.txt', FilesystemEventType.WRITE)).toBe(true)
    expect(seen('sub/inner.txt', FilesystemEventType.CREATE)).toBe(true)
    expect(seen('sub/newdir', FilesystemEventType.CREATE)).toBe(true)
    expect(seen('sub/newdir/deep.txt', FilesystemEventType.CREATE)).toBe(true)
    expect(seen('top.txt', FilesystemEventType.RENAME)).toBe(true)
    expect(seen('top2.txt', FilesystemEventType.CREATE)).toBe(true)
    expect(seen('top2.txt', FilesystemEventType.CHMOD)).toBe(true)
    expect(seen('sub/inner.txt', FilesystemEventType.REMOVE)).toBe(true)
    const created = events.find(
      (e) => e.name === 'sub/inner.txt' && e.type === FilesystemEventType.CREATE,
    )
    expect(created?.entry).toMatchObject({
      name: 'inner.txt',
      path: '/home/user/watched/sub/inner.txt',
      type: FileType.FILE,
    })
    const removed = events.find((e) => e.type === FilesystemEventType.REMOVE)
    expect(removed?.entry).toBeUndefined()
  })

  it('does not recurse unless asked and refuses non-directories', async () => {
    const events: FilesystemEvent[] = []
    const handle = await sbx.files.watchDir('watched', (e) => {
      events.push(e)
    })
    await sbx.files.write('watched/sub/ignored.txt', 'x')
    await sbx.files.write('watched/seen.txt', 'x')
    // Events come in order: once seen.txt's is here, ignored.txt's would be too.
    await eventually('seen.txt is reported', () => events.some((e) => e.name === 'seen.txt'))
    await handle.stop()
    expect(events.some((e) => e.name.includes('ignored'))).toBe(false)
    await expect(sbx.files.watchDir('watched/seen.txt', () => {})).rejects.toThrow(
      /not a directory/,
    )
  })
})

describe('signed URLs', () => {
  const post = (url: string, content: string) => {
    const form = new FormData()
    form.append('file', new Blob([content]), 'ignored-name')
    return fetch(url, { method: 'POST', body: form })
  }

  it('uploads and downloads with signatures, without and with expiration', async () => {
    const up = await sbx.uploadUrl('signed/one.txt')
    const res = await post(up, 'signed content')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual([
      { name: 'one.txt', type: 'file', path: '/home/user/signed/one.txt' },
    ])
    const down = await sbx.downloadUrl('signed/one.txt')
    expect(await (await fetch(down)).text()).toBe('signed content')
    const expiring = await sbx.downloadUrl('signed/one.txt', { useSignatureExpiration: 60 })
    expect(new URL(expiring).searchParams.get('signature_expiration')).toMatch(/^\d+$/)
    expect((await fetch(expiring)).status).toBe(200)
    const rootUp = await sbx.uploadUrl('/root/signed.txt', { user: 'root' })
    expect((await post(rootUp, 'r')).status).toBe(200)
    expect(ownerOf(hostPath(envd, '/root/signed.txt'))).toBe(0)
  })

  it('refuses expired, tampered and unsigned URLs with 401', async () => {
    const expired = new URL(
      await sbx.downloadUrl('signed/one.txt', { useSignatureExpiration: -10 }),
    )
    const r1 = await fetch(expired)
    expect(r1.status).toBe(401)
    expect(await r1.json()).toEqual({ code: 401, message: 'signature is already expired' })
    const other = new URL(await sbx.downloadUrl('signed/one.txt'))
    other.searchParams.set('path', 'signed/other.txt')
    expect((await fetch(other)).status).toBe(401)
    const asRoot = new URL(await sbx.downloadUrl('signed/one.txt'))
    asRoot.searchParams.set('username', 'root')
    expect((await fetch(asRoot)).status).toBe(401)
    const write = new URL(await sbx.downloadUrl('signed/one.txt'))
    expect((await post(write.toString(), 'x')).status).toBe(401)
    expect((await fetch(`${envd.url}/files?path=signed/one.txt`)).status).toBe(401)
  })

  it('answers 404 and 400 as the SDK expects', async () => {
    const missing = await fetch(`${envd.url}/files?path=nope.txt`, {
      headers: { 'X-Access-Token': TOKEN },
    })
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ code: 404 })
    const dir = await fetch(`${envd.url}/files?path=signed`, {
      headers: { 'X-Access-Token': TOKEN },
    })
    expect(dir.status).toBe(400)
    const raw = await fetch(`${envd.url}/files`, {
      method: 'POST',
      headers: { 'X-Access-Token': TOKEN, 'content-type': 'application/octet-stream' },
      body: 'x',
    })
    expect(raw.status).toBe(400)
    const badGzip = await fetch(`${envd.url}/files?path=bad.gz`, {
      method: 'POST',
      headers: {
        'X-Access-Token': TOKEN,
        'content-type': 'application/octet-stream',
        'content-encoding': 'gzip',
      },
      body: 'not gzip at all',
    })
    expect(badGzip.status).toBe(400)
    const form = new FormData()
    form.append('file', new Blob(['1']), 'dup.txt')
    form.append('file', new Blob(['2']), 'dup.txt')
    const dup = await fetch(`${envd.url}/files`, {
      method: 'POST',
      headers: { 'X-Access-Token': TOKEN },
      body: form,
    })
    expect(dup.status).toBe(400)
  })
})
