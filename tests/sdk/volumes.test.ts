// E2B's volumes through the pinned SDK against a real `warren up`: named,
// size-limited disks on the node, bind-mounted into real sandboxes, kept
// across kills and a restart of Warren, with their files reachable through
// the SDK's volume calls (the API streams them to the node).
import { Sandbox, Volume, VolumeError, VolumeNotFoundError, VolumePathNotFoundError } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, expectApiError } from '../helpers/api-client.js'
import { fixtureSecret } from '../helpers/orchestrator-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren({ env: { WARREN_VOLUME_SIZE_MB: '64' } })
const sandboxes: string[] = []
const volumes: string[] = []
let tag = ''

beforeAll(() => {
  // What `warren up` prints for the SDK's volume file calls.
  process.env.E2B_VOLUME_API_URL = warren().apiUrl
  tag = warren().prefix
})

afterAll(async () => {
  for (const id of sandboxes) await Sandbox.kill(id, warren().sdk).catch(() => {})
  for (const id of volumes) await Volume.destroy(id, warren().sdk).catch(() => {})
  delete process.env.E2B_VOLUME_API_URL
})

async function newVolume(name: string): Promise<Volume> {
  const v = await Volume.create(`${name}-${tag}`, warren().sdk)
  volumes.push(v.volumeId)
  return v
}

async function sandbox(volumeMounts: Record<string, Volume | string>): Promise<Sandbox> {
  const sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 300_000, volumeMounts })
  sandboxes.push(sbx.sandboxId)
  return sbx
}

const sh = async (sbx: Sandbox, cmd: string, user?: 'root') =>
  (await sbx.commands.run(cmd, user ? { user } : {})).stdout

describe('volumes through the SDK', () => {
  it('are created, listed, got and destroyed (destroying twice returns false)', async () => {
    const v = await newVolume('crud')
    expect(v.volumeId).toMatch(/^[a-z0-9]{20}$/)
    expect(v.name).toBe(`crud-${tag}`)
    expect(v.token.length).toBeGreaterThan(20)

    expect(await Volume.list(warren().sdk)).toContainEqual({ volumeId: v.volumeId, name: v.name })
    const info = await Volume.getInfo(v.volumeId, warren().sdk)
    expect(info).toMatchObject({ volumeId: v.volumeId, name: v.name, token: v.token })
    const again = await Volume.connect(v.volumeId, warren().sdk)
    expect(again.token).toBe(v.token)
    // Warren's extension: its size, here WARREN_VOLUME_SIZE_MB.
    const raw = await api(warren(), 'GET', `/volumes/${v.volumeId}`)
    expect(raw.body).toMatchObject({ volumeID: v.volumeId, sizeMB: 64 })

    // Names are unique per team.
    expectApiError(await api(warren(), 'POST', '/volumes', { json: { name: v.name } }), 409)
    await expect(Volume.create(v.name, warren().sdk)).rejects.toThrow(VolumeError)

    expect(await Volume.destroy(v.volumeId, warren().sdk)).toBe(true)
    expect(await Volume.destroy(v.volumeId, warren().sdk)).toBe(false)
    await expect(Volume.getInfo(v.volumeId, warren().sdk)).rejects.toThrow(VolumeNotFoundError)
    expect((await Volume.list(warren().sdk)).map((x) => x.volumeId)).not.toContain(v.volumeId)
    expectApiError(await api(warren(), 'GET', `/volumes/${v.volumeId}`), 404)
    // Its files went with it: the old token opens nothing.
    await expect(again.list('/')).rejects.toThrow(VolumeError)
  })

  it('refuses bad input with 400 and creates nothing', async () => {
    const v = await newVolume('input')
    for (const json of [
      { name: 'has space' },
      { name: 'under_score' },
      { name: '' },
      { name: 'x'.repeat(64) },
      { name: `ok-${tag}`, sizeMB: 1 },
      { name: `ok-${tag}`, readOnly: true },
    ]) {
      expectApiError(await api(warren(), 'POST', '/volumes', { json }), 400)
    }
    expectApiError(await api(warren(), 'GET', '/volumes/NOT-AN-ID'), 400)
    expectApiError(await api(warren(), 'GET', '/volumes', { key: null }), 401)

    const before = (await api(warren(), 'GET', '/v2/sandboxes')).body as unknown[]
    for (const volumeMounts of [
      [{ name: v.name, path: 'relative' }],
      [{ name: v.name, path: '/' }],
      [{ name: v.name, path: '/proc/x' }],
      [{ name: v.name, path: '/dev' }],
      [{ name: v.name, path: '/sys/fs' }],
      [{ name: v.name, path: '/opt/warren/x' }],
      [{ name: v.name, path: '/data/../etc' }],
      [{ name: v.name, path: '/data/' }],
      [{ name: 'no-such-volume', path: '/data' }],
      [{ name: v.name, path: '/data', readOnly: true }],
      [{ name: v.name }],
      [
        { name: v.name, path: '/a' },
        { name: v.name, path: '/b' },
      ],
    ]) {
      const res = await api(warren(), 'POST', '/v2/sandboxes', {
        json: { templateID: 'base', volumeMounts },
      })
      expectApiError(res, 400)
    }
    const w = await newVolume('input-two')
    for (const volumeMounts of [
      [
        { name: v.name, path: '/data' },
        { name: w.name, path: '/data' },
      ],
      [
        { name: v.name, path: '/data' },
        { name: w.name, path: '/data/inner' },
      ],
    ]) {
      expectApiError(
        await api(warren(), 'POST', '/v2/sandboxes', {
          json: { templateID: 'base', volumeMounts },
        }),
        400,
      )
    }
    expect((await api(warren(), 'GET', '/v2/sandboxes')).body).toHaveLength(before.length)

    // The content API: its own parameters only, no '..', JSON errors.
    const url = (q: string) => `${warren().apiUrl}/volumecontent/${v.volumeId}/${q}`
    const auth = { authorization: `Bearer ${v.token}` }
    for (const q of ['path?path=/a&color=red', 'path?path=/../etc', 'dir?path=/&depth=0']) {
      const res = await fetch(url(q), { headers: auth })
      expect(res.status, q).toBe(400)
      expect(await res.json()).toEqual({ code: 400, message: expect.any(String) })
    }
    const patch = await fetch(url('path?path=/'), {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ owner: 'me' }),
    })
    expect(patch.status).toBe(400)
  })

  it('lets only the volume token through to its files', async () => {
    const a = await newVolume('auth-a')
    const b = await newVolume('auth-b')
    const get = (id: string, headers: Record<string, string>) =>
      fetch(`${warren().apiUrl}/volumecontent/${id}/dir?path=/`, { headers })
    expect((await get(a.volumeId, {})).status).toBe(401)
    expect((await get(a.volumeId, { authorization: 'Bearer nope' })).status).toBe(401)
    expect((await get(a.volumeId, { authorization: `Bearer ${b.token}` })).status).toBe(401)
    expect((await get(a.volumeId, { 'x-api-key': warren().apiKey })).status).toBe(401)
    expect((await get('a'.repeat(20), { authorization: `Bearer ${a.token}` })).status).toBe(404)
    expect((await get(a.volumeId, { authorization: `Bearer ${a.token}` })).status).toBe(200)
    // The node's port wants the cluster secret first (a bearer token is taken
    // for it: 403), then the volume's token.
    const node = `http://127.0.0.1:${warren().ports.rpc}/volumecontent/${a.volumeId}/dir?path=/`
    expect((await fetch(node)).status).toBe(401)
    expect((await fetch(node, { headers: { authorization: `Bearer ${b.token}` } })).status).toBe(
      403,
    )
    const secret = { 'x-warren-cluster-secret': fixtureSecret(warren()) }
    const withToken = (token: string) =>
      fetch(node, { headers: { ...secret, authorization: `Bearer ${token}` } })
    expect((await withToken(b.token)).status).toBe(401)
    expect((await withToken(a.token)).status).toBe(200)
  })

  it('serves the volume file calls, with owners as sandboxes see them', async () => {
    const v = await newVolume('files')
    const w = await v.writeFile('/docs/readme.txt', 'hello volume\n')
    expect(w).toMatchObject({ name: 'readme.txt', type: 'file', path: '/docs/readme.txt' })
    expect(w).toMatchObject({ size: 13, uid: 1000, gid: 1000, mode: 0o644 })
    expect(await v.readFile('/docs/readme.txt')).toBe('hello volume\n')
    const bytes = new Uint8Array([0, 1, 2, 255])
    await v.writeFile('/bin.dat', bytes.buffer)
    expect(await v.readFile('/bin.dat', { format: 'bytes' })).toEqual(bytes)
    // Replacing a file.
    await v.writeFile('/docs/readme.txt', 'second\n')
    expect(await v.readFile('/docs/readme.txt')).toBe('second\n')

    const root = await v.writeFile('/docs/root-only.txt', 'secret\n', { uid: 0, mode: 0o600 })
    expect(root).toMatchObject({ uid: 0, gid: 0, mode: 0o600 })

    expect(await v.makeDir('/a')).toMatchObject({ type: 'directory', uid: 1000, mode: 0o755 })
    await expect(v.makeDir('/x/y/z')).rejects.toThrow(VolumePathNotFoundError)
    expect(await v.makeDir('/x/y/z', { force: true, mode: 0o700 })).toMatchObject({
      path: '/x/y/z',
      mode: 0o700,
    })
    await expect(v.makeDir('/a')).rejects.toThrow(VolumeError)

    const top = await v.list('/')
    expect(top.map((e) => [e.name, e.type])).toEqual([
      ['a', 'directory'],
      ['bin.dat', 'file'],
      ['docs', 'directory'],
      ['x', 'directory'],
    ])
    expect(top[0]!.mtime).toBeInstanceOf(Date)
    const deep = await v.list('/', { depth: 3 })
    expect(deep.map((e) => e.path)).toContain('/x/y/z')
    expect(deep.map((e) => e.path)).toContain('/docs/readme.txt')

    const info = await v.getInfo('/docs')
    expect(info).toMatchObject({ type: 'directory', path: '/docs', uid: 1000 })
    expect(await v.exists('/docs/readme.txt')).toBe(true)
    expect(await v.exists('/docs/nope.txt')).toBe(false)
    await expect(v.readFile('/docs/nope.txt')).rejects.toThrow(VolumePathNotFoundError)

    const changed = await v.updateMetadata('/docs/readme.txt', { uid: 0, gid: 0, mode: 0o640 })
    expect(changed).toMatchObject({ uid: 0, gid: 0, mode: 0o640 })

    // What a sandbox sees of it: the same owners, by name.
    const sbx = await sandbox({ '/mnt/v': v })
    expect(await sh(sbx, 'stat -c "%U %G %a %n" /mnt/v /mnt/v/docs/readme.txt /mnt/v/a')).toBe(
      'user user 755 /mnt/v\nroot root 640 /mnt/v/docs/readme.txt\nuser user 755 /mnt/v/a\n',
    )
    expect(await sh(sbx, 'cat /mnt/v/docs/root-only.txt 2>&1 || true')).toMatch(/Permission denied/)
    expect(await sh(sbx, 'cat /mnt/v/docs/root-only.txt', 'root')).toBe('secret\n')
    // And what the sandbox writes, the volume API reports with its owner.
    await sh(sbx, 'echo from-sandbox > /mnt/v/a/s.txt && mkdir /mnt/v/a/sub')
    await sh(sbx, 'echo from-root > /mnt/v/r.txt', 'root')
    expect(await v.readFile('/a/s.txt')).toBe('from-sandbox\n')
    expect(await v.getInfo('/a/s.txt')).toMatchObject({ uid: 1000, gid: 1000 })
    expect(await v.getInfo('/r.txt')).toMatchObject({ uid: 0, gid: 0 })

    // Removing: a file, a directory with what is in it.
    await v.remove('/docs/readme.txt')
    expect(await v.exists('/docs/readme.txt')).toBe(false)
    await v.remove('/a')
    expect(await sh(sbx, 'ls /mnt/v')).toBe('bin.dat\ndocs\nr.txt\nx\n')
    await expect(v.remove('/a')).rejects.toThrow(VolumePathNotFoundError)
  })

  it('never follows a symlink a sandbox plants, out of the volume or in it', async () => {
    const v = await newVolume('links')
    const sbx = await sandbox({ '/mnt/v': v })
    await sh(sbx, 'ln -s /etc /mnt/v/etc-link && ln -s /etc/passwd /mnt/v/passwd-link')
    await sh(sbx, 'mkdir /mnt/v/real && ln -s real /mnt/v/inner-link')

    await expect(v.readFile('/passwd-link')).rejects.toThrow(VolumeError)
    await expect(v.readFile('/etc-link/passwd')).rejects.toThrow(VolumeError)
    await expect(v.list('/etc-link')).rejects.toThrow(VolumeError)
    await expect(v.list('/inner-link')).rejects.toThrow(VolumeError)
    await expect(v.writeFile('/etc-link/owned', 'x')).rejects.toThrow(VolumeError)
    await expect(v.makeDir('/etc-link/d', { force: true })).rejects.toThrow(VolumeError)
    await expect(v.updateMetadata('/passwd-link', { mode: 0o777 })).rejects.toThrow(VolumeError)
    // Described, not followed; removed as a link, its target stays.
    expect(await v.getInfo('/passwd-link')).toMatchObject({
      type: 'symlink',
      target: '/etc/passwd',
    })
    await v.remove('/etc-link')
    expect(await sh(sbx, 'ls /mnt/v; test -d /etc && echo etc-kept')).toBe(
      'inner-link\npasswd-link\nreal\netc-kept\n',
    )
    // A write to the link's name replaces the link, not its target.
    await v.writeFile('/passwd-link', 'plain file now\n')
    expect(
      await sh(sbx, 'cat /mnt/v/passwd-link; test -L /mnt/v/passwd-link || echo no-link'),
    ).toBe('plain file now\nno-link\n')
  })

  it('stops a write past the size limit, in a sandbox and through the SDK', async () => {
    const res = await api(warren(), 'POST', '/volumes', {
      json: { name: `small-${tag}`, sizeMB: 16 },
    })
    expect(res.status).toBe(201)
    const id = (res.body as { volumeID: string }).volumeID
    volumes.push(id)
    const v = await Volume.connect(id, warren().sdk)
    const sbx = await sandbox({ '/small': v })
    const dd = await sbx.commands
      .run('dd if=/dev/zero of=/small/big bs=1M count=32', {
        timeoutMs: 60_000,
      })
      .catch((e: { exitCode?: number; stderr?: string }) => e)
    expect(dd.exitCode).not.toBe(0)
    expect(dd.stderr).toMatch(/No space left on device/)
    expect(Number(await sh(sbx, 'stat -c %s /small/big'))).toBeLessThan(16 * 2 ** 20)
    await sh(sbx, 'rm /small/big')

    await expect(v.writeFile('/too-big', new Uint8Array(24 * 2 ** 20).buffer)).rejects.toThrow(
      /507/,
    )
    // The failed upload left nothing behind; the space is usable again.
    expect(await v.list('/')).toEqual([])
    await v.writeFile('/fits', new Uint8Array(2 * 2 ** 20).buffer)
    expect(await sh(sbx, 'stat -c %s /small/fits')).toBe(`${2 * 2 ** 20}\n`)
  })
})

describe('mounted volumes', () => {
  it('are shared between sandboxes, kept across kills, a cold resume and a restart of Warren', async () => {
    const v = await newVolume('shared')
    const a = await sandbox({ '/mnt/shared': v })
    const b = await sandbox({ '/home/user/data': v.name })

    // Both see each other's writes, as the sandbox's user.
    await sh(a, 'echo from-a > /mnt/shared/a.txt')
    await sh(b, 'echo from-b > /home/user/data/b.txt')
    expect(await sh(b, 'cat /home/user/data/a.txt')).toBe('from-a\n')
    expect(await sh(a, 'cat /mnt/shared/b.txt; stat -c %U /mnt/shared/b.txt')).toBe(
      'from-b\nuser\n',
    )

    // The API reports the mounts as the SDK reads them.
    expect((await a.getInfo()).volumeMounts).toEqual([{ name: v.name, path: '/mnt/shared' }])
    const listed = await Sandbox.list(warren().sdk).nextItems()
    expect(listed.find((s) => s.sandboxId === b.sandboxId)?.volumeMounts).toEqual([
      { name: v.name, path: '/home/user/data' },
    ])

    // A mounted volume is not deleted.
    expectApiError(await api(warren(), 'DELETE', `/volumes/${v.volumeId}`), 409)
    await expect(Volume.destroy(v.volumeId, warren().sdk)).rejects.toThrow(VolumeError)

    // Paused to files and resumed: the volume is mounted again.
    await b.pause({ keepMemory: false })
    await sh(a, 'echo while-b-paused > /mnt/shared/p.txt')
    const b2 = await Sandbox.connect(b.sandboxId, warren().sdk)
    expect(await sh(b2, 'cat /home/user/data/p.txt')).toBe('while-b-paused\n')

    await a.kill()
    await b2.kill()
    await warren().stop()
    await warren().start()

    const c = await sandbox({ '/work': v })
    expect(await sh(c, 'cat /work/a.txt /work/b.txt /work/p.txt')).toBe(
      'from-a\nfrom-b\nwhile-b-paused\n',
    )
    expect(await v.readFile('/a.txt')).toBe('from-a\n')
    await c.kill()
    expect(await Volume.destroy(v.volumeId, warren().sdk)).toBe(true)
  })

  it('a delete racing a create that mounts the volume: one wins, never a sandbox on a deleted volume', async () => {
    for (let i = 0; i < 4; i++) {
      const v = await newVolume(`race${i}`)
      const [created, destroyed] = await Promise.allSettled([
        Sandbox.create({ ...warren().sdk, timeoutMs: 120_000, volumeMounts: { '/v': v } }),
        // Half of the rounds give the create a head start.
        new Promise((r) => setTimeout(r, i % 2 ? 50 : 0)).then(() =>
          Volume.destroy(v.volumeId, warren().sdk),
        ),
      ])
      if (created.status === 'fulfilled') {
        sandboxes.push(created.value.sandboxId)
        // The delete lost: refused, and the volume is there and in use.
        expect(destroyed.status).toBe('rejected')
        expect((await Volume.getInfo(v.volumeId, warren().sdk)).volumeId).toBe(v.volumeId)
        await sh(created.value, 'echo ok > /v/ok')
        expect(await v.readFile('/ok')).toBe('ok\n')
        await created.value.kill()
        expect(await Volume.destroy(v.volumeId, warren().sdk)).toBe(true)
      } else {
        // The create lost: the volume is gone and no sandbox was left behind.
        expect(destroyed).toEqual({ status: 'fulfilled', value: true })
        expect(String(created.reason)).toMatch(/400|409|volume/)
      }
    }
    const running = (await Sandbox.list(warren().sdk).nextItems()).filter((s) =>
      (s.volumeMounts ?? []).some((m) => m.name.startsWith('race')),
    )
    expect(running).toEqual([])
  })
})
