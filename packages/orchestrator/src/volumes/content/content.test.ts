import {
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { createLogger, newVolumeId, tokenSha256, WarrenError } from '@warren/shared'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { volumePaths } from '../record.js'
import { VolumeRegistry } from '../registry.js'
import type { VolumeScope } from './entry.js'
import { volumeContentHandler } from './handler.js'
import { listDir } from './list-dir.js'
import { makeDir } from './make-dir.js'
import { openFile } from './read-file.js'
import { removeEntry } from './remove.js'
import { statEntry } from './stat.js'
import { updateMetadata } from './update-metadata.js'
import { writeFile } from './write-file.js'

// The content operations on a real directory standing in for a volume's
// root (no disk image needed), and a directory beside it standing for the
// rest of the host, which no request may reach whatever symlinks a sandbox
// plants. Privileged: owners are set with chown, so root only.

const BASE = 100000
const asRoot = process.getuid?.() === 0

let dir: string
let scope: VolumeScope
let outside: string

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'warren-volume-test-'))
  scope = { root: join(dir, 'root'), uidBase: BASE }
  outside = join(dir, 'outside')
  mkdirSync(scope.root)
  mkdirSync(outside)
  writeFileSync(join(outside, 'secret'), 'host file\n')
  return () => rmSync(dir, { recursive: true, force: true })
})

const body = (text: string) => Readable.from([Buffer.from(text)])
const read = async (names: string[]) => {
  const { file } = await openFile(scope, names)
  try {
    return (await file.readFile()).toString()
  } finally {
    await file.close()
  }
}
async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    return err instanceof WarrenError ? err.code : `raw: ${(err as Error).message}`
  }
}

describe.skipIf(!asRoot)('content operations', () => {
  it('write makes parents and replaces files; owners shift both ways', async () => {
    const e = await writeFile(scope, ['a', 'b', 'f.txt'], {}, body('one\n'))
    expect(e).toMatchObject({ name: 'f.txt', path: '/a/b/f.txt', size: 4, uid: 1000, mode: 0o644 })
    expect(statSync(join(scope.root, 'a/b')).uid).toBe(BASE + 1000)
    expect(statSync(join(scope.root, 'a/b/f.txt')).uid).toBe(BASE + 1000)
    await writeFile(scope, ['a', 'b', 'f.txt'], { uid: 0, mode: 0o600 }, body('two\n'))
    expect(await read(['a', 'b', 'f.txt'])).toBe('two\n')
    expect(await statEntry(scope, ['a', 'b', 'f.txt'])).toMatchObject({
      uid: 0,
      gid: 0,
      mode: 0o600,
    })
    // Nothing of the upload is left beside it.
    expect((await listDir(scope, ['a', 'b'], 1)).map((x) => x.name)).toEqual(['f.txt'])
    // A host owner outside the sandbox's range reads as nobody.
    chownSync(join(scope.root, 'a'), 0, 0)
    expect(await statEntry(scope, ['a'])).toMatchObject({ uid: 65534, gid: 65534 })
  })

  it('makeDir: parents only with force, which also accepts a directory that exists', async () => {
    expect(await code(makeDir(scope, ['x', 'y'], {}))).toBe('not_found')
    expect(await makeDir(scope, ['x', 'y'], { force: true, mode: 0o700, uid: 5 })).toMatchObject({
      type: 'directory',
      mode: 0o700,
      uid: 5,
      gid: 5,
    })
    expect(await code(makeDir(scope, ['x', 'y'], {}))).toBe('conflict')
    expect(await code(makeDir(scope, ['x', 'y'], { force: true }))).toBe('ok')
    await writeFile(scope, ['file'], {}, body(''))
    expect(await code(makeDir(scope, ['file'], { force: true }))).toBe('conflict')
  })

  it('lists to a depth, sorted, and describes symlinks without entering them', async () => {
    await writeFile(scope, ['d', 'e', 'deep.txt'], {}, body('x'))
    await writeFile(scope, ['z.txt'], {}, body('x'))
    symlinkSync(outside, join(scope.root, 'link'))
    expect((await listDir(scope, [], 1)).map((e) => `${e.type} ${e.path}`)).toEqual([
      'directory /d',
      'symlink /link',
      'file /z.txt',
    ])
    const all = await listDir(scope, [], 5)
    expect(all.map((e) => e.path)).toEqual(['/d', '/d/e', '/d/e/deep.txt', '/link', '/z.txt'])
    expect(all.find((e) => e.name === 'link')).toMatchObject({ target: outside, type: 'symlink' })
  })

  it('never follows a symlink out of the volume, for any operation', async () => {
    symlinkSync(outside, join(scope.root, 'out'))
    symlinkSync(join(outside, 'secret'), join(scope.root, 'secret-link'))
    const refused = [
      () => read(['secret-link']),
      () => read(['out', 'secret']),
      () => listDir(scope, ['out'], 1),
      () => statEntry(scope, ['out', 'secret']),
      () => writeFile(scope, ['out', 'planted'], {}, body('x')),
      () => makeDir(scope, ['out', 'd'], { force: true }),
      () => updateMetadata(scope, ['out', 'secret'], { mode: 0o777 }),
      () => updateMetadata(scope, ['secret-link'], { mode: 0o777 }),
      () => removeEntry(scope, ['out', 'secret']),
    ]
    for (const op of refused) expect(await code(op())).toBe('invalid_argument')
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('host file\n')
    expect(statSync(join(outside, 'secret')).mode & 0o777).not.toBe(0o777)
    expect(existsSync(join(outside, 'planted'))).toBe(false)
    // A symlink's owner changes on the link itself; removing removes the link.
    await updateMetadata(scope, ['secret-link'], { uid: 7 })
    expect(lstatSync(join(scope.root, 'secret-link')).uid).toBe(BASE + 7)
    expect(statSync(join(outside, 'secret')).uid).toBe(0)
    await removeEntry(scope, ['out'])
    expect(existsSync(join(outside, 'secret'))).toBe(true)
    // Writing to a link's name replaces the link.
    await writeFile(scope, ['secret-link'], {}, body('mine\n'))
    expect(lstatSync(join(scope.root, 'secret-link')).isFile()).toBe(true)
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('host file\n')
  })

  it('removes a tree without following the symlinks inside it', async () => {
    await writeFile(scope, ['t', 'a', 'f'], {}, body('x'))
    symlinkSync(outside, join(scope.root, 't', 'a', 'to-host'))
    await removeEntry(scope, ['t'])
    expect(existsSync(join(scope.root, 't'))).toBe(false)
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('host file\n')
    expect(await code(removeEntry(scope, ['t']))).toBe('not_found')
    expect(await code(removeEntry(scope, []))).toBe('invalid_argument')
  })

  it('reads only regular files', async () => {
    mkdirSync(join(scope.root, 'd'))
    expect(await code(read(['d']))).toBe('invalid_argument')
    expect(await code(read(['missing']))).toBe('not_found')
  })
})

describe.skipIf(!asRoot)('the content handler', () => {
  let server: Server
  let base: string
  let dataDir: string
  const volumeId = newVolumeId()
  const token = 'the-token'

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'warren-volume-handler-'))
    mkdirSync(volumePaths(dataDir, volumeId).root, { recursive: true })
    const volumes = new VolumeRegistry({
      createVolume: async () => {},
      deleteVolume: async () => {},
    })
    const record = { volumeId, sizeMb: 64, tokenSha256: tokenSha256(token), createdAt: '' }
    volumes.load({ ready: [record], broken: [] }, [])
    const handler = volumeContentHandler({
      volumes,
      dataDir,
      uidBase: BASE,
      log: createLogger('handler-test', 'silent'),
    })
    server = createServer(handler)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/volumecontent`
  })
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()))
    rmSync(dataDir, { recursive: true, force: true })
  })

  const auth = { authorization: `Bearer ${token}` }

  it('answers only the volume token, with JSON errors', async () => {
    const list = `${base}/${volumeId}/dir?path=/`
    expect((await fetch(list)).status).toBe(401)
    expect((await fetch(list, { headers: { authorization: 'Bearer x' } })).status).toBe(401)
    const unknown = await fetch(`${base}/${newVolumeId()}/dir?path=/`, { headers: auth })
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toEqual({ code: 404, message: expect.any(String) })
    expect((await fetch(`${base}/${volumeId}/dir?path=/&x=1`, { headers: auth })).status).toBe(400)
    expect((await fetch(`${base}/${volumeId}/dir?path=..`, { headers: auth })).status).toBe(400)
    expect((await fetch(`${base}/${volumeId}/nothing?path=/`, { headers: auth })).status).toBe(404)
  })

  it('writes, reads, changes and removes through HTTP', async () => {
    const put = await fetch(`${base}/${volumeId}/file?path=/n/hello.txt&mode=384`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: 'hello\n',
    })
    expect(put.status).toBe(200)
    expect(await put.json()).toMatchObject({ path: '/n/hello.txt', size: 6, mode: 0o600 })
    const get = await fetch(`${base}/${volumeId}/file?path=/n/hello.txt`, { headers: auth })
    expect(await get.text()).toBe('hello\n')
    const patch = await fetch(`${base}/${volumeId}/path?path=/n/hello.txt`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ gid: 0 }),
    })
    expect(await patch.json()).toMatchObject({ uid: 1000, gid: 0 })
    const badPatch = await fetch(`${base}/${volumeId}/path?path=/n/hello.txt`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ gid: '0' }),
    })
    expect(badPatch.status).toBe(400)
    const del = await fetch(`${base}/${volumeId}/path?path=/n`, { method: 'DELETE', headers: auth })
    expect(del.status).toBe(204)
    expect((await fetch(`${base}/${volumeId}/path?path=/n`, { headers: auth })).status).toBe(404)
  })
})
