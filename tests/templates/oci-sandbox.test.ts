// A pulled image runs as a Warren sandbox. The image is made from the base
// template minus `user`, its home, its sudoers entry and Warren's mount
// points (base-image.ts): pullImage + prepareSandboxLayer must bring back
// everything a sandbox needs. Privileged: a real node (runc, netns, nft)
// and a real registry on loopback.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { prepareSandboxLayer, pullImage, type TemplateMetadata } from '@warren/orchestrator'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startNodeFixture, TEMPLATES_DIR } from '../helpers/node-fixture.js'
import { startRegistry, type TestRegistry } from '../helpers/registry.js'
import { sh } from '../runtime/helpers.js'
import { baseImage } from './base-image.js'

const base = JSON.parse(
  readFileSync(join(TEMPLATES_DIR, 'base', 'template.json'), 'utf8'),
) as TemplateMetadata

describe('a pulled image as a sandbox (needs root)', () => {
  const work = mkdtempSync(join(tmpdir(), 'warren-oci-sandbox-'))
  const templatesDir = join(work, 'templates')
  let registry: TestRegistry | undefined
  let layers: string[] = []
  let notes: string[] = []

  beforeAll(async () => {
    registry = await startRegistry()
    const image = await baseImage(work, {
      entries: [{ name: 'etc/warren-image', body: 'pulled\n' }],
      config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin'], Cmd: ['/bin/bash'] },
    })
    await registry.pushImage('test/debian', 'bookworm', image)

    const into = join(templatesDir, 'oci')
    const pulled = await pullImage(`${registry.host}/test/debian:bookworm`, {
      into,
      uidBase: base.uidBase,
    })
    const extra = await prepareSandboxLayer({ into, layers: pulled.layers, uidBase: base.uidBase })
    expect(extra.user).toMatchObject({ name: 'user', uid: 1000, created: true })
    expect(extra.envdRunnable).toBe(true)
    notes = extra.notes
    layers = [extra.layer, ...pulled.layers].map((l) => join('oci', l))
    const meta: TemplateMetadata = {
      ...base,
      templateId: 'img',
      buildId: pulled.manifestDigest.slice(7, 23),
      builtAt: new Date().toISOString(),
      // E2B's `user` has passwordless sudo: setuid must work.
      noNewPrivileges: false,
      layers,
    }
    mkdirSync(join(templatesDir, 'img', 'builds', meta.buildId), { recursive: true })
    const json = `${JSON.stringify(meta, null, 2)}\n`
    writeFileSync(join(templatesDir, 'img', 'builds', meta.buildId, 'template.json'), json)
    writeFileSync(join(templatesDir, 'img', 'template.json'), json)
  }, 600_000)

  afterAll(async () => {
    await registry?.stop()
    rmSync(work, { recursive: true, force: true })
  })

  it('boots; `user` exists with passwordless sudo and a home; the image is what runs', async () => {
    expect(notes).toEqual([])
    const node = await startNodeFixture({ config: { templatesDir } })
    try {
      const record = await node.create({ templateId: 'img' })
      const sbx = node.sdk(record)
      // envd starts commands with the primary group only; the account database has the rest.
      expect((await sh(sbx, 'id -un; id -u; id -g')).split('\n')).toEqual([
        'user',
        '1000',
        '1000',
        '',
      ])
      expect((await sh(sbx, 'id user')).trim()).toBe(
        'uid=1000(user) gid=1000(user) groups=1000(user),27(sudo)',
      )
      expect((await sh(sbx, 'echo $HOME; pwd; stat -c %U:%a ~; ls -A ~')).split('\n')).toEqual([
        '/home/user',
        '/home/user',
        'user:755',
        '.bash_logout',
        '.bashrc',
        '.profile',
        '',
      ])
      expect((await sh(sbx, 'sudo -n id -u')).trim()).toBe('0')
      expect(await sh(sbx, 'cat /etc/warren-image')).toBe('pulled\n')
      // The setuid bit survived the image round trip and the uid shift.
      expect((await sh(sbx, 'stat -c %U:%a /usr/bin/sudo')).trim()).toBe('root:4755')
      await sbx.files.write('/home/user/hello.txt', 'hi')
      expect(await sh(sbx, 'cat ~/hello.txt && stat -c %U ~/hello.txt')).toBe('hiuser\n')
    } finally {
      await node.teardown()
    }
  })
})
