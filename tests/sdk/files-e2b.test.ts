// envd's file semantics are E2B's, in a real sandbox: envd acts as root and
// hands what it creates to the user, so a write as `user` outside its home
// succeeds and creates the parents (0755) and the file (0644) as the user's;
// removing what is not there succeeds; a multi-file write returns one entry
// per file, in order, in both upload forms the SDK uses.
import { Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
let sbx: Sandbox

beforeAll(async () => {
  sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 300_000 })
})
afterAll(async () => {
  if (sbx) await Sandbox.kill(sbx.sandboxId, warren().sdk).catch(() => {})
})

/** `owner:group mode` of each path, as root sees it in the sandbox. */
async function owners(...paths: string[]): Promise<string[]> {
  const r = await sbx.commands.run(`stat -c '%U:%G %a' ${paths.join(' ')}`, { user: 'root' })
  return r.stdout.trim().split('\n')
}

describe('writes as the user, anywhere', () => {
  it('creates missing parents outside the home, owned by the user, as E2B does', async () => {
    const info = await sbx.files.write('/0/a.txt', 'zero', { user: 'user' })
    expect(info).toMatchObject({ name: 'a.txt', path: '/0/a.txt', type: 'file' })
    expect(await sbx.files.read('/0/a.txt')).toBe('zero')
    expect(await owners('/0', '/0/a.txt')).toEqual(['user:user 755', 'user:user 644'])

    await sbx.files.write('/opt/deep/er/b.txt', 'b')
    expect(await owners('/opt', '/opt/deep', '/opt/deep/er', '/opt/deep/er/b.txt')).toEqual([
      'root:root 755',
      'user:user 755',
      'user:user 755',
      'user:user 644',
    ])
    // The user's own processes may use what was written for them.
    const r = await sbx.commands.run('echo more >> /opt/deep/er/b.txt && cat /opt/deep/er/b.txt')
    expect(r.stdout).toBe('bmore\n')
  })

  it('an existing file of root is overwritten and handed to the writer', async () => {
    await sbx.commands.run('echo root > /etc/owned-by-root && chmod 600 /etc/owned-by-root', {
      user: 'root',
    })
    await sbx.files.write('/etc/owned-by-root', 'user now')
    expect(await owners('/etc/owned-by-root')).toEqual(['user:user 600'])
    expect(await sbx.files.read('/etc/owned-by-root')).toBe('user now')
  })

  it('makeDir and rename outside the home make directories the user owns', async () => {
    expect(await sbx.files.makeDir('/srv/made/here')).toBe(true)
    expect(await owners('/srv/made', '/srv/made/here')).toEqual(['user:user 755', 'user:user 755'])
    await sbx.files.write('/srv/made/here/f.txt', 'f')
    const moved = await sbx.files.rename('/srv/made/here/f.txt', '/var/new/place/f.txt')
    expect(moved).toMatchObject({ path: '/var/new/place/f.txt' })
    expect(await owners('/var/new', '/var/new/place')).toEqual(['user:user 755', 'user:user 755'])
  })

  it('root writes stay root-owned', async () => {
    await sbx.files.write('/root/r/x.txt', 'r', { user: 'root' })
    expect(await owners('/root/r', '/root/r/x.txt')).toEqual(['root:root 755', 'root:root 644'])
  })
})

describe('remove', () => {
  it('succeeds for a path that does not exist, and removes trees the user does not own', async () => {
    await sbx.files.remove('/nope/not/here')
    await sbx.files.remove('/home/user/missing.txt')
    await sbx.commands.run('mkdir -p /var/tree/a && touch /var/tree/a/b', { user: 'root' })
    await sbx.files.remove('/var/tree')
    expect(await sbx.files.exists('/var/tree')).toBe(false)
  })
})

describe('multi-file writes', () => {
  const files = Array.from({ length: 8 }, (_, i) => ({
    path: i % 2 ? `/data/multi/${i}/f${i}.txt` : `multi/f${i}.txt`,
    data: `content ${i}`,
  }))
  const expected = files.map((f) => (f.path.startsWith('/') ? f.path : `/home/user/${f.path}`))

  it.each([
    ['multipart', false],
    ['octet-stream', true],
  ])('%s: one entry per file, in order, every file written', async (_form, useOctetStream) => {
    const infos = await sbx.files.write(
      files.map((f) => ({ ...f, path: f.path.replace('multi', `multi-${_form}`) })),
      { useOctetStream },
    )
    const paths = expected.map((p) => p.replace('multi', `multi-${_form}`))
    expect(infos.map((i) => i.path)).toEqual(paths)
    expect(infos.every((i) => i.type === 'file')).toBe(true)
    for (const [i, p] of paths.entries()) expect(await sbx.files.read(p)).toBe(`content ${i}`)
    expect(await owners(paths[1]!.replace(/\/f1\.txt$/, ''))).toEqual(['user:user 755'])
  })
})
