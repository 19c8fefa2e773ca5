// `warren template build` from a Dockerfile against `warren up`: the steps
// go through the API as the SDK's do, and the CLI shows them as they run.
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Sandbox } from 'e2b'
import { afterAll, describe, expect, it } from 'vitest'
import { connectionFlags, runCli } from '../helpers/cli.js'
import { proxyRequest } from '../helpers/proxy-client.js'
import { useWarren } from '../helpers/warren-fixture.js'
import { buildContext, ownTemplatesDir } from './helpers.js'

const templates = ownTemplatesDir()
const context = buildContext()

describe('warren template build -f Dockerfile', () => {
  const warren = useWarren({ env: { WARREN_TEMPLATES_DIR: templates.dir } })
  afterAll(() => {
    context.remove()
    templates.remove()
  })
  const run = randomBytes(4).toString('hex')

  it('builds a Dockerfile with progress output, and lists and deletes it', async () => {
    writeFileSync(
      join(context.dir, 'Dockerfile.test'),
      [
        'FROM base',
        'ARG FLAVOUR=plain',
        `ENV RUN_ID=${run} MODE=$FLAVOUR`,
        'COPY --chown=user:user app /srv/app',
        'RUN echo "built $FLAVOUR" > /srv/flavour && echo step-output-$RUN_ID',
        'WORKDIR /srv/app',
        'USER user',
        'EXPOSE 8000',
        'CMD ["python3", "-m", "http.server", "8000"]',
        '',
      ].join('\n'),
    )
    const name = `df-${run}`
    const r = await runCli(
      warren(),
      [
        'template',
        'build',
        '-f',
        'Dockerfile.test',
        '--name',
        name,
        '--build-arg',
        'FLAVOUR=spicy',
        context.dir,
        ...connectionFlags(warren()),
      ],
      300_000,
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`building ${name} from template base: 5 steps`)
    // EXPOSE makes the CMD ready once its port listens; CMD's exec form is read as JSON.
    expect(r.stderr).toContain('start: python3 -m http.server 8000 (ready once port 8000 listens)')
    expect(r.stderr).toMatch(/=> \[2\/5\] COPY app \/srv\/app user:user/)
    expect(r.stderr).toContain(`   step-output-${run}`)
    expect(r.stdout).toMatch(new RegExp(`template ${name} \\([a-z0-9]{20}\\) built in`))

    const sbx = await Sandbox.create(name, warren().sdk)
    try {
      const out = await sbx.commands.run(
        'whoami; pwd; echo $MODE; cat /srv/flavour; stat -c %U run.sh',
      )
      expect(out.stdout).toBe('user\n/srv/app\nspicy\nbuilt spicy\nuser\n')
      // The CMD's server answers through the proxy as soon as create returns.
      const res = await proxyRequest(warren(), { host: sbx.getHost(8000), path: '/index.html' })
      expect(res.status).toBe(200)
      expect(res.text).toBe('<h1>built by warren</h1>\n')
    } finally {
      await sbx.kill()
    }

    const list = await runCli(warren(), [
      'template',
      'list',
      '--json',
      ...connectionFlags(warren()),
    ])
    const rows = JSON.parse(list.stdout) as Array<{ names: string; status: string }>
    expect(rows.find((t) => t.names === name)?.status).toBe('ready')
    const del = await runCli(warren(), ['template', 'delete', name, ...connectionFlags(warren())])
    expect(del.code, del.stderr).toBe(0)
    const after = await runCli(warren(), [
      'template',
      'list',
      '--json',
      ...connectionFlags(warren()),
    ])
    expect(
      (JSON.parse(after.stdout) as Array<{ names: string }>).some((t) => t.names === name),
    ).toBe(false)
  })
})
