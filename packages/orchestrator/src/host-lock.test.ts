import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { WarrenError } from '@warren/shared'
import { afterEach, describe, expect, it } from 'vitest'
import { acquireDirLock } from './host-lock.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const tempDir = () => {
  const d = mkdtempSync('/tmp/warren-lock-')
  dirs.push(d)
  return d
}

describe('acquireDirLock', () => {
  it('has one owner at a time, and a released lock can be taken again', async () => {
    const dir = tempDir()
    const release = await acquireDirLock(dir, '.lock', 'data directory')
    const err = await acquireDirLock(dir, '.lock', 'data directory').catch((e) => e)
    expect(err).toBeInstanceOf(WarrenError)
    expect(err.message).toBe(`data directory ${dir} is in use by process ${process.pid}`)
    // Another name, or another directory, is another lock.
    await (await acquireDirLock(dir, '.other', 'x'))()
    await (await acquireDirLock(tempDir(), '.lock', 'x'))()
    await release()
    await (await acquireDirLock(dir, '.lock', 'data directory'))()
  })

  it('is free the moment its holder is killed, even before the holder is reaped', async () => {
    const dir = tempDir()
    const module = join(import.meta.dirname, 'host-lock.ts')
    const holder = join(dir, 'holder.mjs')
    writeFileSync(
      holder,
      `const m = await import(${JSON.stringify(module)})
await m.acquireDirLock(${JSON.stringify(dir)}, '.lock', 'd')
console.log('held')
setInterval(() => {}, 1000)
`,
    )
    // A parent that starts the holder and never waits for it: the killed
    // holder stays a zombie, as under a supervisor that restarts before it reaps.
    const parent = `import subprocess, sys, time
p = subprocess.Popen(['node', '--import', 'tsx', sys.argv[1]])
print(p.pid, flush=True)
time.sleep(30)`
    const sh = spawn('python3', ['-c', parent, holder], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: import.meta.dirname,
      detached: true,
    })
    try {
      const out: string[] = []
      await new Promise<void>((ok, fail) => {
        sh.stdout.on('data', (b: Buffer) => {
          out.push(b.toString())
          if (out.join('').includes('held')) ok()
        })
        sh.on('exit', () => fail(new Error(`holder did not start: ${out.join('')}`)))
      })
      const pid = Number(out.join('').split('\n')[0])
      expect((await acquireDirLock(dir, '.lock', 'd').catch((e) => e)).message).toMatch(
        /in use by process/,
      )
      process.kill(pid, 'SIGKILL')
      let state = ''
      for (let i = 0; i < 100 && state !== 'Z'; i++) {
        await new Promise((r) => setTimeout(r, 20))
        state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] ?? ''
      }
      expect(state).toBe('Z')
      await (await acquireDirLock(dir, '.lock', 'd'))()
    } finally {
      // The whole group: the parent and the holder.
      if (sh.pid) process.kill(-sh.pid, 'SIGKILL')
    }
  })
})
