import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CommandError, run, runLogged } from './exec.js'

const dir = mkdtempSync(join(tmpdir(), 'warren-exec-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('run', () => {
  it('returns stdout, feeds stdin and honours cwd', async () => {
    expect(await run('sh', ['-c', 'cat; pwd'], { input: 'in\n', cwd: dir })).toBe(`in\n${dir}\n`)
  })

  it('starts commands in the helper process, not in the node', async () => {
    const parent = Number(await run('sh', ['-c', 'echo $PPID']))
    expect(parent).toBeGreaterThan(0)
    expect(parent).not.toBe(process.pid)
    // The same helper for every command.
    expect(Number(await run('sh', ['-c', 'echo $PPID']))).toBe(parent)
  })

  it('turns a failure into a CommandError with its exit code and stderr', async () => {
    const err = await run('sh', ['-c', 'echo bad >&2; exit 3']).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CommandError)
    expect(err).toMatchObject({
      command: 'sh -c echo bad >&2; exit 3',
      exitCode: 3,
      stderr: 'bad\n',
    })
    expect(await run('sh', ['-c', 'echo ok; exit 3'], { okCodes: [3] })).toBe('ok\n')
  })

  it('reports a command that cannot start and one killed at its timeout', async () => {
    await expect(run('/nonexistent/tool', [])).rejects.toMatchObject({
      exitCode: null,
      stderr: expect.stringMatching(/ENOENT/),
    })
    await expect(run('sleep', ['5'], { timeoutMs: 50 })).rejects.toMatchObject({ exitCode: null })
  })

  it('runs commands concurrently and answers each its own', async () => {
    const outs = await Promise.all(
      Array.from({ length: 40 }, (_, i) => run('sh', ['-c', `sleep 0.0${i % 5}; echo ${i}`])),
    )
    expect(outs).toEqual(Array.from({ length: 40 }, (_, i) => `${i}\n`))
  })

  it('fails what the helper was running when it dies, then starts a new one', async () => {
    const helper = Number(await run('sh', ['-c', 'echo $PPID']))
    const pending = run('sleep', ['5'])
    await new Promise((r) => setTimeout(r, 50))
    process.kill(helper, 'SIGKILL')
    await expect(pending).rejects.toMatchObject({ stderr: /helper exited/ })
    const next = Number(await run('sh', ['-c', 'echo $PPID']))
    expect(next).not.toBe(helper)
  })
})

describe('runLogged', () => {
  it('appends output to the log and resolves at exit while a child keeps the log open', async () => {
    const log = join(dir, 'log')
    // The background sleep holds the log's descriptor; the command itself exits at once.
    const code = await runLogged('sh', ['-c', 'echo one; echo two >&2; sleep 1 & exit 4'], log)
    expect(code).toBe(4)
    expect(readFileSync(log, 'utf8')).toBe('one\ntwo\n')
  })
})
