// The `warren sandbox` commands with --json, each once, against warren up.
import { describe, expect, it } from 'vitest'
import { connectionFlags, runCli, runCliJson } from '../helpers/cli.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)

const sbxCmd = (...args: string[]) => ['sandbox', ...args, '--json', ...connectionFlags(warren())]

describe('warren sandbox … --json', () => {
  it('create, list, info, timeout, exec and kill', async () => {
    const created = (await runCliJson(
      warren(),
      sbxCmd('create', '--timeout', '120', '-m', 'suite=cli', 'who=a=b'),
    )) as { sandboxId: string }
    expect(created).toEqual({ sandboxId: expect.stringMatching(/^[a-z0-9]{20}$/) })
    const id = sandboxes.add(created.sandboxId)

    const listed = (await runCliJson(warren(), sbxCmd('list', '-m', 'suite=cli'))) as Array<{
      sandboxId: string
      state: string
      metadata: Record<string, string>
    }>
    expect(listed).toEqual([
      expect.objectContaining({
        sandboxId: id,
        state: 'running',
        metadata: { suite: 'cli', who: 'a=b' },
      }),
    ])

    type Info = { sandboxId: string; state: string; startedAt: string; endAt: string }
    const info = (await runCliJson(warren(), sbxCmd('info', id))) as Info
    expect(info).toMatchObject({ sandboxId: id, state: 'running', template: 'base' })
    expect(Date.parse(info.endAt) - Date.parse(info.startedAt)).toBe(120_000)

    const before = Date.now()
    expect(await runCliJson(warren(), sbxCmd('timeout', id, '600'))).toEqual({
      sandboxId: id,
      timeout: 600,
    })
    const after = Date.now()
    const extended = (await runCliJson(warren(), sbxCmd('info', id))) as Info
    expect(Date.parse(extended.endAt)).toBeGreaterThanOrEqual(before + 600_000)
    expect(Date.parse(extended.endAt)).toBeLessThanOrEqual(after + 600_000)

    expect(await runCliJson(warren(), sbxCmd('exec', id, 'echo hi; echo oops >&2'))).toEqual({
      exitCode: 0,
      stdout: 'hi\n',
      stderr: 'oops\n',
    })
    // A failing command: its result, and its exit code as the CLI's own.
    const failed = await runCli(warren(), sbxCmd('exec', id, 'echo partial; exit 3'))
    expect(failed.code).toBe(3)
    expect(JSON.parse(failed.stdout)).toEqual({ exitCode: 3, stdout: 'partial\n', stderr: '' })

    expect(await runCliJson(warren(), sbxCmd('kill', id))).toEqual([
      { sandboxId: id, killed: true },
    ])
    const again = await runCli(warren(), sbxCmd('kill', id))
    expect(again.code).toBe(1)
    expect(JSON.parse(again.stdout)).toEqual([{ sandboxId: id, killed: false }])
    expect(await runCliJson(warren(), sbxCmd('list', '-m', 'suite=cli'))).toEqual([])

    const missing = await runCli(warren(), sbxCmd('info', id))
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/not found/i)
  })
})
