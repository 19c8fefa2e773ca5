// E2B's template build protocol through the official SDK against `warren
// up`: Template.build from base with COPY, RUN, ENV, WORKDIR, USER and a
// start command with a ready check; the cache; a failing step; delete.
import { randomBytes } from 'node:crypto'
import { createApiKey, ensureTeam, openDatabase } from '@warren/api'
import { type LogEntry, Sandbox, Template, waitForPort } from 'e2b'
import { afterAll, describe, expect, it } from 'vitest'
import { proxyRequest } from '../helpers/proxy-client.js'
import { useWarren } from '../helpers/warren-fixture.js'
import { buildContext, ownTemplatesDir } from './helpers.js'

const templates = ownTemplatesDir()
const context = buildContext()

describe('Template.build against warren up', () => {
  const warren = useWarren({ env: { WARREN_TEMPLATES_DIR: templates.dir } })
  afterAll(() => {
    context.remove()
    templates.remove()
  })
  // Unique per run: nothing of it can be in any cache yet.
  const run = randomBytes(4).toString('hex')
  const name = `app-${run}`

  const appTemplate = () =>
    Template({ fileContextPath: context.dir })
      .fromTemplate('base')
      .setEnvs({ RUN_ID: run })
      .copy('app', '/opt/app')
      .copy('notes.txt', '/opt/notes/')
      .runCmd('whoami > /tmp/who-default && echo "$RUN_ID" > /tmp/run-id')
      .runCmd('whoami > /opt/who-root', { user: 'root' })
      .setEnvs({ GREETING: 'hello from env' })
      .setWorkdir('/opt/app')
      .setUser('root')
      .runCmd('id -un > /opt/app/user-step; pwd > /opt/app/pwd-step')
      .setUser('user')
      .setStartCmd('python3 -m http.server 8000', waitForPort(8000))

  const build = async (template: ReturnType<typeof appTemplate>, n: string) => {
    const logs: LogEntry[] = []
    const info = await Template.build(template, n, {
      ...warren().sdk,
      onBuildLogs: (l) => logs.push(l),
    })
    return { info, logs: logs.map((l) => l.message) }
  }

  it('builds from base, and a sandbox sees every step and serves at once', async () => {
    const { info, logs } = await build(appTemplate(), name)
    expect(info.templateId).toMatch(/^[a-z0-9]{20}$/)
    const steps = logs.filter((l) => /^\[\d+\/\d+\]/.test(l))
    expect(steps.length).toBe(10)
    expect(steps.some((l) => l.includes('CACHED'))).toBe(false)
    expect(await Template.exists(name, warren().sdk)).toBe(true)

    const sbx = await Sandbox.create(name, warren().sdk)
    try {
      // The start command answers through the proxy as soon as create returns.
      const res = await proxyRequest(warren(), { host: sbx.getHost(8000), path: '/index.html' })
      expect(res.status).toBe(200)
      expect(res.text).toBe('<h1>built by warren</h1>\n')

      const sh = async (cmd: string, user?: 'root' | 'user') =>
        (await sbx.commands.run(cmd, user ? { user } : {})).stdout.trim()
      expect(await sh('whoami; pwd; echo "$GREETING"; echo "$RUN_ID"')).toBe(
        `user\n/opt/app\nhello from env\n${run}`,
      )
      // COPY of a directory: its contents, modes kept, owned by the current user.
      expect(
        await sh('cd /opt/app && stat -c "%n %a %U" index.html run.sh secret.txt sub/nested.txt'),
      ).toBe('index.html 644 user\nrun.sh 755 user\nsecret.txt 600 user\nsub/nested.txt 644 user')
      expect(await sh('stat -c "%a %U" /opt/notes/notes.txt; cat /opt/notes/notes.txt')).toBe(
        '644 user\na single file',
      )
      expect(await sh('cat /tmp/who-default /tmp/run-id /opt/who-root')).toBe(`user\n${run}\nroot`)
      expect(await sh('stat -c %U /opt/who-root')).toBe('root')
      expect(await sh('cat /opt/app/user-step /opt/app/pwd-step')).toBe('root\n/opt/app')
    } finally {
      await sbx.kill()
    }
  })

  it('rebuilds from the cache: every step a hit, the same layers', async () => {
    const before = templates.layers().sort()
    const { logs } = await build(appTemplate(), name)
    const steps = logs.filter((l) => /^\[\d+\/\d+\]/.test(l))
    expect(steps.length).toBe(10)
    expect(steps.every((l) => l.includes('CACHED'))).toBe(true)
    expect(templates.layers().sort()).toEqual(before)
  })

  it('reports a failing RUN with its step and output', async () => {
    const failing = Template({ fileContextPath: context.dir })
      .fromTemplate('base')
      .setEnvs({ RUN_ID: run })
      .runCmd('echo "about to fail"; echo "the reason: $RUN_ID" >&2; exit 3')
      .runCmd('echo never')
    const logs: string[] = []
    const err = await Template.build(failing, `fail-${run}`, {
      ...warren().sdk,
      onBuildLogs: (l) => logs.push(l.message),
    }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).name).toBe('BuildError')
    expect((err as Error).message).toContain('exited with code 3')
    expect(logs).toContain('about to fail')
    expect(logs).toContain(`the reason: ${run}`)
    expect(logs.some((l) => l.includes('echo never'))).toBe(false)
    // The step is the SDK's index: 1 is the first step after the base.
    const res = await fetch(`${warren().apiUrl}/templates?`, {
      headers: { 'x-api-key': warren().apiKey },
    })
    const list = (await res.json()) as Array<{
      names: string[]
      templateID: string
      buildID: string
    }>
    const t = list.find((x) => x.names.includes(`fail-${run}`))!
    const status = await Template.getBuildStatus(
      { templateId: t.templateID, buildId: t.buildID },
      warren().sdk,
    )
    expect(status.status).toBe('error')
    expect(status.reason?.step).toBe('2')
  })

  it('fails a build whose start command dies, with its exit code and output', async () => {
    // The ready check would only time out; the start command's own end says why at once.
    const dies = Template()
      .fromTemplate('base')
      .setStartCmd('no-such-server 8000', waitForPort(8000))
    const err = await Template.build(dies, `dies-${run}`, warren().sdk).catch((e: Error) => e)
    expect((err as Error).name).toBe('BuildError')
    expect((err as Error).message).toMatch(
      /start command 'no-such-server 8000' exited with code 127: .*no-such-server: not found/,
    )
  })

  it('creates `name:tag` from the build the tag names, `name` from the current one', async () => {
    const tagged = `tags-${run}`
    const version = (v: string) =>
      Template().fromTemplate('base').runCmd(`echo ${v} > /opt/version`, { user: 'root' })
    await build(version('one'), `${tagged}:v1`)
    await build(version('two'), `${tagged}:v2`)
    const versionOf = async (ref: string) => {
      const sbx = await Sandbox.create(ref, warren().sdk)
      try {
        return (await sbx.commands.run('cat /opt/version')).stdout.trim()
      } finally {
        await sbx.kill()
      }
    }
    expect(await versionOf(`${tagged}:v1`)).toBe('one')
    expect(await versionOf(`${tagged}:v2`)).toBe('two')
    expect(await versionOf(tagged)).toBe('two')
    await expect(Sandbox.create(`${tagged}:v3`, warren().sdk)).rejects.toThrow(/has no tag 'v3'/)
  })

  it("keeps a team's templates from other teams", async () => {
    const db = await openDatabase(warren().databaseUrl)
    const other = await ensureTeam(db, `other-${run}`, { maxConcurrent: 5, maxLifetimeS: 3600 })
    const { key } = await createApiKey(db, other.id, 'other team')
    await db.destroy()
    const sdk = { ...warren().sdk, apiKey: key }
    expect(await Template.exists(name, sdk)).toBe(false)
    await expect(Sandbox.create(name, sdk)).rejects.toThrow(/not found/)
    const res = await fetch(`${warren().apiUrl}/templates`, { headers: { 'x-api-key': key } })
    expect(((await res.json()) as Array<{ templateID: string }>).map((t) => t.templateID)).toEqual([
      'base',
    ])
  })

  it('deletes a template and only the layers no other template uses', async () => {
    // A second template sharing the first steps (and so their layers).
    const shared = Template({ fileContextPath: context.dir })
      .fromTemplate('base')
      .setEnvs({ RUN_ID: run })
      .copy('app', '/opt/app')
      .runCmd('echo other > /opt/other', { user: 'root' })
    const other = await build(shared, `other-${run}`)
    expect(other.logs.filter((l) => l.includes('CACHED')).length).toBe(2)
    const list = (await (
      await fetch(`${warren().apiUrl}/templates`, { headers: { 'x-api-key': warren().apiKey } })
    ).json()) as Array<{ names: string[]; templateID: string }>
    const app = list.find((t) => t.names.includes(name))!

    const before = new Set(templates.layers())
    const del = await fetch(`${warren().apiUrl}/templates/${app.templateID}`, {
      method: 'DELETE',
      headers: { 'x-api-key': warren().apiKey },
    })
    expect(del.status).toBe(204)
    const after = new Set(templates.layers())
    expect(after.size).toBeLessThan(before.size)
    expect(await Template.exists(name, warren().sdk)).toBe(false)
    await expect(Sandbox.create(name, warren().sdk)).rejects.toThrow(/not found/)

    // The other template still stands on the shared layers.
    const sbx = await Sandbox.create(`other-${run}`, warren().sdk)
    try {
      const out = await sbx.commands.run('cat /opt/other /opt/app/index.html')
      expect(out.stdout).toBe('other\n<h1>built by warren</h1>\n')
    } finally {
      await sbx.kill()
    }
  })
})
