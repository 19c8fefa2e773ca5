import { CommandExitError, type Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually } from '../helpers/api-client.js'
import { initEnvd, type RunningEnvd, sdk, startEnvd } from './harness.js'

let envd: RunningEnvd
let sbx: Sandbox

beforeAll(async () => {
  envd = await startEnvd()
  const res = await initEnvd(envd, { defaultUser: 'user', envVars: { SANDBOX_VAR: 'from-init' } })
  expect(res.status).toBe(204)
  sbx = sdk(envd)
})
afterAll(async () => {
  await envd?.stop()
})

describe('commands.run', () => {
  it('returns stdout, stderr and exit code 0', async () => {
    const r = await sbx.commands.run('echo out; echo err >&2')
    expect(r).toMatchObject({ exitCode: 0, stdout: 'out\n', stderr: 'err\n' })
  })

  it('throws CommandExitError with the result on a non-zero exit', async () => {
    const err = await sbx.commands.run('echo partial; exit 3').catch((e) => e)
    expect(err).toBeInstanceOf(CommandExitError)
    expect(err.exitCode).toBe(3)
    expect(err.stdout).toBe('partial\n')
    expect(err.error).toBe('exit status 3')
  })

  it('reports a missing command as exit 127 from the shell', async () => {
    const err = await sbx.commands.run('definitely-not-a-command').catch((e) => e)
    expect(err).toBeInstanceOf(CommandExitError)
    expect(err.exitCode).toBe(127)
  })

  it('passes env vars: login identity, /init vars, request vars', async () => {
    const r = await sbx.commands.run('echo $HOME $USER $LOGNAME $SANDBOX_VAR $MINE', {
      envs: { MINE: 'request' },
    })
    expect(r.stdout).toBe('/home/user user user from-init request\n')
  })

  it('runs in the home directory by default and in cwd when given', async () => {
    expect((await sbx.commands.run('pwd')).stdout).toBe('/home/user\n')
    expect((await sbx.commands.run('pwd', { cwd: '/tmp' })).stdout).toBe('/tmp\n')
  })

  it('rejects a cwd that does not exist', async () => {
    await expect(sbx.commands.run('pwd', { cwd: '/nope/nothing' })).rejects.toThrow(
      /does not exist/,
    )
  })

  it('runs as user by default and as root on request', async () => {
    expect((await sbx.commands.run('id -u; echo $HOME')).stdout).toBe('1000\n/home/user\n')
    expect((await sbx.commands.run('id -u; pwd', { user: 'root' })).stdout).toBe('0\n/root\n')
  })

  it('rejects an unknown user', async () => {
    await expect(sbx.commands.run('true', { user: 'nobody-here' })).rejects.toThrow(/invalid user/)
  })

  it('streams output to callbacks', async () => {
    const chunks: string[] = []
    await sbx.commands.run('for i in 1 2 3; do echo $i; sleep 0.05; done', {
      onStdout: (d) => {
        chunks.push(d)
      },
    })
    expect(chunks.join('')).toBe('1\n2\n3\n')
  })

  it('runs in the background, reconnects, lists and kills', async () => {
    const handle = await sbx.commands.run('sleep 30', { background: true })
    const listed = await sbx.commands.list()
    expect(listed.map((p) => p.pid)).toContain(handle.pid)
    expect(listed.find((p) => p.pid === handle.pid)).toMatchObject({ cmd: '/bin/bash' })
    await handle.disconnect()
    const again = await sbx.commands.connect(handle.pid)
    expect(await sbx.commands.kill(handle.pid)).toBe(true)
    const err = await again.wait().catch((e) => e)
    expect(err).toBeInstanceOf(CommandExitError)
    expect(err.exitCode).toBe(-1)
    expect(err.error).toBe('signal: killed')
    expect((await sbx.commands.list()).map((p) => p.pid)).not.toContain(handle.pid)
    expect(await sbx.commands.kill(handle.pid)).toBe(false)
  })

  it('keeps a process running while nobody is attached and its output is unread', async () => {
    const handle = await sbx.commands.run('head -c 5000000 /dev/zero; echo done >&2; sleep 0.3', {
      background: true,
    })
    await handle.disconnect()
    // The 5 MB go nowhere without blocking: the process finishes.
    await eventually(
      'the unattached process finishes',
      async () => !(await sbx.commands.list()).some((p) => p.pid === handle.pid),
      10_000,
    )
  })

  it('delivers all output to a slow reader (backpressure, no loss at exit)', async () => {
    let size = 0
    let calls = 0
    const r = await sbx.commands.run("head -c 8000000 /dev/zero | tr '\\0' a", {
      onStdout: async (d) => {
        size += d.length
        // The slow reader under test: a pause every 20 chunks.
        if (++calls % 20 === 0) await new Promise((res) => setTimeout(res, 5))
      },
    })
    expect(size).toBe(8_000_000)
    expect(r.stdout.length).toBe(8_000_000)
  })

  it('reports not found for unknown pids', async () => {
    await expect(sbx.commands.connect(999_999)).rejects.toThrow(/not found/)
    await expect(sbx.commands.sendStdin(999_999, 'x')).rejects.toThrow(/not found/)
  })

  it('feeds stdin with sendStdin and closeStdin', async () => {
    const handle = await sbx.commands.run('cat', { background: true, stdin: true })
    await sbx.commands.sendStdin(handle.pid, 'hello ')
    await handle.sendStdin('world')
    await handle.closeStdin()
    const r = await handle.wait()
    expect(r.stdout).toBe('hello world')
  })

  it('gives commands without stdin an empty stdin', async () => {
    expect((await sbx.commands.run('cat; echo end')).stdout).toBe('end\n')
  })

  it('kills the process at the request timeout', async () => {
    const started = Date.now()
    await expect(sbx.commands.run('sleep 20', { timeoutMs: 500 })).rejects.toThrow(
      /timeout|timed out/i,
    )
    expect(Date.now() - started).toBeLessThan(10_000)
    await eventually(
      'the timed-out process is gone',
      async () => (await sbx.commands.run('pgrep -x sleep -u 1000 || true')).stdout === '',
    )
  })
})

describe('pty', () => {
  it('creates a terminal, takes input and resizes', async () => {
    let out = ''
    const decoder = new TextDecoder()
    const term = await sbx.pty.create({
      cols: 80,
      rows: 24,
      onData: (d) => {
        out += decoder.decode(d, { stream: true })
      },
    })
    const until = async (re: RegExp) => {
      const deadline = Date.now() + 10_000
      while (!re.test(out)) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${re}; got ${JSON.stringify(out)}`)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    const enc = new TextEncoder()
    await sbx.pty.sendInput(term.pid, enc.encode('stty size; tty; id -un\n'))
    await until(/24 80[\s\S]*\/dev\/pts\/\d+[\s\S]*user/)
    await sbx.pty.resize(term.pid, { cols: 100, rows: 30 })
    await sbx.pty.sendInput(term.pid, enc.encode('stty size\n'))
    await until(/30 100/)
    await sbx.pty.sendInput(term.pid, enc.encode('exit 0\n'))
    const r = await term.wait()
    expect(r.exitCode).toBe(0)
  })

  it('can be killed', async () => {
    const term = await sbx.pty.create({ cols: 80, rows: 24, onData: () => {} })
    expect(await sbx.pty.kill(term.pid)).toBe(true)
    await expect(term.wait()).rejects.toThrow(/signal: killed/)
  })
})
