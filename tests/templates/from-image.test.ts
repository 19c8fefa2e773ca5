// Templates built from OCI images through the pinned SDK against `warren
// up`: Template().fromImage('localhost:<port>/…') pulls from a real registry
// on loopback (plain HTTP: loopback) an image the test made from the base
// template minus what Warren adds (tests/templates/base-image.ts), then
// RUN and COPY steps on top. Also: htpasswd credentials (fromImageRegistry),
// the Dockerfile CLI's FROM, a musl image, and the pulled layers' garbage
// collection when no template uses them any more.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type LogEntry, Sandbox, Template } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually } from '../helpers/api-client.js'
import { connectionFlags, runCli } from '../helpers/cli.js'
import { HOST_ARCH, type Image, makeImage, makeLayer } from '../helpers/oci-image.js'
import { useRegistry } from '../helpers/registry.js'
import { useWarren } from '../helpers/warren-fixture.js'
import { baseImage } from './base-image.js'
import { buildContext, ownTemplatesDir } from './helpers.js'

const templates = ownTemplatesDir()
const context = buildContext()
const work = mkdtempSync(join(tmpdir(), 'warren-from-image-'))
afterAll(() => {
  context.remove()
  templates.remove()
  rmSync(work, { recursive: true, force: true })
})

/** What the image store holds: unpacked layers and sandbox layers. */
function storeLayers(): string[] {
  const ls = (d: string) => {
    try {
      return readdirSync(join(templates.dir, d))
    } catch {
      return []
    }
  }
  return ['layers', 'sandbox'].flatMap((kind) =>
    ls(`oci/${kind}`).flatMap((fmt) => ls(`oci/${kind}/${fmt}`).map((n) => `${kind}/${n}`)),
  )
}

describe('Template.build fromImage against warren up', () => {
  const warren = useWarren({ env: { WARREN_TEMPLATES_DIR: templates.dir } })
  const open = useRegistry()
  const locked = useRegistry({ auth: { kind: 'htpasswd', users: { alice: 'right-password' } } })
  const run = randomBytes(4).toString('hex')
  // The registries listen on 127.0.0.1; `localhost` names them as users write it.
  const ref = (r: () => { host: string }, repo: string) =>
    `${r().host.replace('127.0.0.1', 'localhost')}/${repo}`
  let image: Image

  beforeAll(async () => {
    image = await baseImage(work, {
      entries: [
        { name: 'etc/warren-image', body: 'pulled\n' },
        { name: 'srv/image-app/', type: 'directory', mode: 0o755 },
      ],
      config: {
        Env: [
          'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          'IMAGE_GREETING=hello from the image',
        ],
        // Not what sandboxes run as, in, or start (as in E2B).
        User: 'nobody',
        WorkingDir: '/srv/image-app',
        Cmd: ['/bin/sh', '-c', 'touch /tmp/cmd-ran; sleep infinity'],
      },
    })
    await open().pushImage('test/app', 'v1', image)
    await locked().pushImage('test/app', 'v1', image)
    const musl = makeImage({
      layers: [
        await makeLayer([
          { name: 'lib/ld-musl-x86_64.so.1', body: 'not really' },
          { name: 'lib/ld-musl-aarch64.so.1', body: 'not really' },
          { name: 'bin/sh', body: '' },
        ]),
      ],
      platform: image.platform,
    })
    await open().pushImage('test/alpine-like', 'v1', musl)
  }, 300_000)

  const build = async (t: Parameters<typeof Template.build>[0], name: string) => {
    const logs: LogEntry[] = []
    const info = await Template.build(t, name, {
      ...warren().sdk,
      onBuildLogs: (l) => logs.push(l),
    })
    return { info, logs: logs.map((l) => l.message) }
  }
  const appTemplate = () =>
    Template({ fileContextPath: context.dir })
      .fromImage(`${ref(open, 'test/app')}:v1`)
      .copy('app', '/opt/app')
      .runCmd('whoami > /tmp/who; pwd > /tmp/pwd; echo "$IMAGE_GREETING" > /tmp/greeting')
      .runCmd('sudo -n touch /opt/made-by-sudo')
      .runCmd('id -u > /opt/root-id', { user: 'root' })

  it('builds with RUN and COPY on the image; its sandbox runs as user, with sudo and the image ENV', async () => {
    const { logs } = await build(appTemplate(), `img-${run}`)
    expect(logs).toContain(`pulling ${ref(open, 'test/app')}:v1`)
    expect(logs.filter((l) => /^layer [0-9a-f]{12}: [\d.]+ MB downloaded$/.test(l))).toHaveLength(2)

    const sbx = await Sandbox.create(`img-${run}`, warren().sdk)
    try {
      const sh = async (cmd: string) => (await sbx.commands.run(cmd)).stdout.trim()
      // E2B's defaults, not the image's USER and WORKDIR.
      expect(await sh('whoami; pwd; echo "$IMAGE_GREETING"')).toBe(
        'user\n/home/user\nhello from the image',
      )
      expect(await sh('sudo -n id -u')).toBe('0')
      // The steps ran as user in its home, with the image's ENV; root where asked.
      expect(await sh('cat /tmp/who /tmp/pwd /tmp/greeting /opt/root-id')).toBe(
        'user\n/home/user\nhello from the image\n0',
      )
      expect(await sh('stat -c %U /opt/made-by-sudo /opt/app/index.html')).toBe('root\nuser')
      expect(await sh('cat /etc/warren-image /opt/app/index.html')).toBe(
        'pulled\n<h1>built by warren</h1>',
      )
      // The image's CMD is not a start command.
      expect(await sh('test -e /tmp/cmd-ran && echo ran || echo not run')).toBe('not run')
    } finally {
      await sbx.kill()
    }
  })

  it('rebuilds from the caches: the image asks the registry one HEAD, every step a hit', async () => {
    await open().clearRequests()
    const { logs } = await build(appTemplate(), `img-${run}`)
    expect(logs.filter((l) => l.endsWith(': already here'))).toHaveLength(2)
    const steps = logs.filter((l) => /^\[\d+\/\d+\]/.test(l))
    expect(steps.length).toBe(4)
    expect(steps.every((l) => l.includes('CACHED'))).toBe(true)
    const requests = (await open().requests()).filter((r) => r.path !== '/v2/')
    expect(requests.map((r) => r.method)).toEqual(['HEAD'])
  })

  it('pulls from a private registry with the right password, and says why not with a wrong one', async () => {
    const from = `${ref(locked, 'test/app')}:v1`
    const t = (password: string) =>
      Template()
        .fromImage(from, { username: 'alice', password })
        .runCmd('echo private > /opt/private', { user: 'root' })
    await build(t('right-password'), `private-${run}`)
    const sbx = await Sandbox.create(`private-${run}`, warren().sdk)
    try {
      expect((await sbx.commands.run('cat /opt/private')).stdout).toBe('private\n')
    } finally {
      await sbx.kill()
    }
    const wrong = await build(t('wrong'), `wrong-${run}`).catch((e: Error) => e)
    expect((wrong as Error).name).toBe('BuildError')
    expect((wrong as Error).message).toContain("the registry refused the credentials of 'alice'")
    const none = await build(Template().fromImage(from), `none-${run}`).catch((e: Error) => e)
    expect((none as Error).message).toContain(
      'the registry requires authentication and no credentials were given',
    )
    // By digest the image is in the node's store already: the registry is
    // still asked, so the store does not hand it to a build without the password.
    const byDigest = `${ref(locked, 'test/app')}@${image.manifest.digest}`
    const stored = await build(Template().fromImage(byDigest), `digest-${run}`).catch(
      (e: Error) => e,
    )
    expect((stored as Error).message).toContain(
      'the registry requires authentication and no credentials were given',
    )
  })

  it('builds a Dockerfile FROM an image on a loopback registry with the CLI', async () => {
    writeFileSync(
      join(context.dir, 'Dockerfile.image'),
      [
        `FROM ${ref(open, 'test/app')}:v1`,
        'COPY app /srv/app',
        'RUN whoami > /srv/built-by && echo "$IMAGE_GREETING" > /srv/greeting',
        'USER user',
        '',
      ].join('\n'),
    )
    const name = `df-img-${run}`
    const r = await runCli(
      warren(),
      [
        'template',
        'build',
        '-f',
        'Dockerfile.image',
        '--name',
        name,
        context.dir,
        ...connectionFlags(warren()),
      ],
      300_000,
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`building ${name} from image ${ref(open, 'test/app')}:v1: 3 steps`)
    const sbx = await Sandbox.create(name, warren().sdk)
    try {
      const out = await sbx.commands.run('whoami; cat /srv/built-by /srv/greeting /srv/app/run.sh')
      expect(out.stdout).toBe('user\nroot\nhello from the image\n#!/bin/sh\necho run\n')
    } finally {
      await sbx.kill()
    }
  })

  it('fails the build of a musl image clearly: envd cannot run there', async () => {
    const err = await build(
      Template().fromImage(`${ref(open, 'test/alpine-like')}:v1`),
      `musl-${run}`,
    ).catch((e: Error) => e)
    expect((err as Error).name).toBe('BuildError')
    expect((err as Error).message).toMatch(/cannot run Warren's envd \(libc: musl\).*glibc/)
  })

  it("collects the image's layers once no template uses them", async () => {
    const kinds = (ls: string[]) => [
      ls.filter((l) => l.startsWith('layers/')).length,
      ls.filter((l) => l.startsWith('sandbox/')).length,
    ]
    // The image's two layers and its sandbox layer (shared by all three
    // templates), and the musl image's, which no template names.
    expect(kinds(storeLayers())).toEqual([3, 2])
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${warren().apiUrl}${path}`, {
        ...init,
        headers: { 'x-api-key': warren().apiKey },
      })
    const list = (await (await api('/templates')).json()) as Array<{
      names: string[]
      templateID: string
    }>
    const idOf = (name: string) => list.find((t) => t.names.includes(name))!.templateID
    expect((await api(`/templates/${idOf(`img-${run}`)}`, { method: 'DELETE' })).status).toBe(204)
    const kept = storeLayers()
    expect(kinds(kept)).toEqual([2, 1])
    expect(kept.filter((l) => l.startsWith('layers/')).sort()).toEqual(
      image.layers.map((l) => `layers/${l.diffId.slice('sha256:'.length)}`).sort(),
    )
    // A sandbox on the last template, killed right before the deletes: a
    // kill answers before its teardown ends, and the build it stood on
    // stays only until then.
    const sbx = await Sandbox.create(`df-img-${run}`, warren().sdk)
    await sbx.kill()
    for (const name of [`private-${run}`, `df-img-${run}`]) {
      expect((await api(`/templates/${idOf(name)}`, { method: 'DELETE' })).status).toBe(204)
    }
    await eventually(
      `no layer left (${storeLayers().join(', ')})`,
      () => storeLayers().length === 0,
      15_000,
    )
    expect(existsSync(join(templates.dir, idOf(`df-img-${run}`)))).toBe(false)
  })
})

describe('an image layer over the node limit (WARREN_MAX_IMAGE_LAYER_MB)', () => {
  const big = ownTemplatesDir()
  const warren = useWarren({
    env: { WARREN_TEMPLATES_DIR: big.dir, WARREN_MAX_IMAGE_LAYER_MB: '1' },
  })
  const registry = useRegistry()
  afterAll(() => big.remove())

  it('fails the build, and nothing of the layer stays', async () => {
    // 3 MiB of random bytes: no compression makes them small.
    const layer = await makeLayer([{ name: 'blob', body: randomBytes(3 * 2 ** 20) }], 'none')
    const platform = { os: 'linux', architecture: HOST_ARCH }
    await registry().pushImage('test/big', 'v1', makeImage({ layers: [layer], platform }))
    const err = await Template.build(
      Template().fromImage(`${registry().host}/test/big:v1`),
      'too-big',
      warren().sdk,
    ).catch((e: Error) => e)
    expect((err as Error).name).toBe('BuildError')
    expect((err as Error).message).toContain(
      `layer ${layer.digest}: it unpacks to more than 1 MiB, the limit for one image layer`,
    )
    const ls = (d: string) => {
      try {
        return readdirSync(join(big.dir, d))
      } catch {
        return []
      }
    }
    expect(ls('oci/layers/v1-100000')).toEqual([])
    expect(ls('oci/tmp')).toEqual([])
  })
})
