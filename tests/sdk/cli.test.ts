// The `warren sandbox` commands with --json, each once, against warren up;
// `shell` in a pseudo-terminal, as a person at a terminal runs it.
import { spawn } from 'node:child_process'
import { Sandbox } from 'e2b'
import { spawn as spawnPty } from 'node-pty'
import { describe, expect, it } from 'vitest'
import { detail, eventually, sleep } from '../helpers/api-client.js'
import { CLI, connectionFlags, runCli, runCliJson } from '../helpers/cli.js'
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

describe('warren sandbox pause|resume', () => {
  it('pauses (with memory, or files only with --memory=false) and resumes', async () => {
    const w = warren()
    const { sandboxId: id } = (await runCliJson(w, sbxCmd('create', '--timeout', '120'))) as {
      sandboxId: string
    }
    sandboxes.add(id)
    expect(await runCliJson(w, sbxCmd('pause', id))).toEqual({
      sandboxId: id,
      paused: true,
      memory: true,
    })
    expect(await detail(w, id)).toMatchObject({ state: 'paused', pausedKind: 'memory' })
    // Already paused: said so, exit code 1, nothing changes.
    const again = await runCli(w, sbxCmd('pause', id))
    expect(again.code).toBe(1)
    expect(JSON.parse(again.stdout)).toMatchObject({ sandboxId: id, paused: false })

    expect(await runCliJson(w, sbxCmd('resume', id))).toEqual({ sandboxId: id, state: 'running' })
    expect(await detail(w, id)).toMatchObject({ state: 'running', resumedFrom: 'memory' })

    expect(await runCliJson(w, sbxCmd('pause', id, '--memory=false'))).toMatchObject({
      paused: true,
      memory: false,
    })
    expect(await detail(w, id)).toMatchObject({ state: 'paused', pausedKind: 'files' })
    expect(await runCliJson(w, sbxCmd('resume', id))).toEqual({ sandboxId: id, state: 'running' })
    expect(await detail(w, id)).toMatchObject({ state: 'running', resumedFrom: 'files' })

    const bad = await runCli(w, sbxCmd('pause', id, '--memory=maybe'))
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toMatch(/true or false/)
    const missing = await runCli(w, sbxCmd('resume', 'some-id'))
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/not found/i)
  })

  it('snapshots a sandbox and forks it: files kept, fresh processes', async () => {
    const w = warren()
    const { sandboxId: id } = (await runCliJson(w, sbxCmd('create', '--timeout', '120'))) as {
      sandboxId: string
    }
    sandboxes.add(id)
    await runCliJson(w, sbxCmd('exec', id, 'echo kept > /home/user/kept.txt'))
    const snap = (await runCliJson(
      w,
      sbxCmd('snapshot', id, '--name', `cli-${id.slice(0, 6)}`),
    )) as {
      snapshotId: string
      names: string[]
    }
    expect(snap).toEqual({ snapshotId: expect.any(String), names: [`cli-${id.slice(0, 6)}`] })
    const forks = (await runCliJson(w, sbxCmd('fork', id, '--count', '2'))) as Array<{
      sandboxId: string
      error: string
    }>
    expect(forks).toHaveLength(2)
    for (const f of forks) {
      expect(f.error).toBe('')
      sandboxes.add(f.sandboxId)
      expect(
        await runCliJson(w, sbxCmd('exec', f.sandboxId, 'cat /home/user/kept.txt')),
      ).toMatchObject({
        stdout: 'kept\n',
      })
    }
    await Sandbox.deleteSnapshot(snap.snapshotId, w.sdk)
  })
})

describe('warren sandbox shell', () => {
  /** The CLI in a pseudo-terminal of its own, as a person at a terminal runs it. */
  function openShell(id: string, cols = 100, rows = 30) {
    const w = warren()
    const term = spawnPty(process.execPath, [CLI, 'sandbox', 'shell', id, ...connectionFlags(w)], {
      cols,
      rows,
      env: { ...process.env, ...w.env } as Record<string, string>,
    })
    let out = ''
    term.onData((d) => {
      out += d
    })
    const exited = new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)))
    const waitFor = (re: RegExp, what = String(re)) =>
      eventually(
        `${what} in the terminal (got: ${JSON.stringify(out.slice(-300))})`,
        () => re.test(out),
        15_000,
      )
    return { term, exited, waitFor, output: () => out }
  }

  it('is an interactive terminal: input, output, window size, Ctrl-C and Ctrl-D', async () => {
    const sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 120_000 })
    sandboxes.add(sbx.sandboxId)
    const { term, exited, waitFor, output } = openShell(sbx.sandboxId, 100, 30)
    try {
      term.write('echo "sum=$((6*7)) user=$(whoami) tty=$(tty)"; stty size\r')
      await waitFor(/sum=42 user=user tty=\/dev\/pts\/\d+/)
      await waitFor(/[\r\n]30 100\r/, 'the initial size')
      // The local window grows: SIGWINCH, and the remote terminal follows.
      term.resize(120, 40)
      // (The resize travels apart from the keystrokes: ask until it has arrived.)
      const deadline = Date.now() + 10_000
      while (!/[\r\n]40 120\r/.test(output())) {
        if (Date.now() > deadline)
          throw new Error(`no 40x120 in the terminal: ${JSON.stringify(output().slice(-400))}`)
        term.write('stty size\r')
        await sleep(300)
      }
      // Ctrl-C interrupts the remote command, not the CLI.
      term.write('sleep 100\r')
      await sleep(500)
      term.write('\x03')
      term.write('echo after-interrupt-$((1+1))\r')
      await waitFor(/after-interrupt-2/)
      // Ctrl-D ends the shell, and with it the CLI (exit code 0).
      term.write('\x04')
      expect(await exited).toBe(0)
    } finally {
      term.kill()
    }
  })

  it('takes piped input too: the commands run, and the end of input ends the shell', async () => {
    const w = warren()
    const sbx = await Sandbox.create({ ...w.sdk, timeoutMs: 120_000 })
    sandboxes.add(sbx.sandboxId)
    const child = spawn(
      process.execPath,
      [CLI, 'sandbox', 'shell', sbx.sandboxId, ...connectionFlags(w)],
      {
        env: { ...process.env, ...w.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    )
    let out = ''
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString()
    })
    const code = new Promise<number | null>((resolve) => child.once('close', resolve))
    // A command in the script reads the script's next line, as a shell fed a file does.
    child.stdin.end('echo piped-$((3*3)) as $(whoami)\nread line; echo got-$line\nsecond\n')
    try {
      expect(await code).toBe(0)
      expect(out).toMatch(/piped-9 as user/)
      expect(out).toMatch(/got-second/)
    } finally {
      child.kill('SIGKILL')
    }
  })

  it("exits with the shell's exit code", async () => {
    const sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 120_000 })
    sandboxes.add(sbx.sandboxId)
    const { term, exited, waitFor } = openShell(sbx.sandboxId)
    try {
      term.write('echo ready-$((2+3))\r')
      await waitFor(/ready-5/)
      term.write('exit 7\r')
      expect(await exited).toBe(7)
    } finally {
      term.kill()
    }
  })
})
