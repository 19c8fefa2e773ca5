import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { processAlive, processIdentity } from './process-probe.js'

describe('process probe', () => {
  it('sees a process alive until it exits, then dead', async () => {
    const child = spawn('sleep', ['30'])
    await once(child, 'spawn')
    const id = processIdentity(child.pid!)
    expect(id).toBeDefined()
    expect(processAlive(id!)).toBe(true)
    child.kill('SIGKILL')
    await once(child, 'exit')
    expect(processAlive(id!)).toBe(false)
  })

  it('takes a reused pid (another start time) for a dead process', () => {
    const self = processIdentity(process.pid)!
    expect(processAlive(self)).toBe(true)
    expect(processAlive({ pid: process.pid, startTime: String(Number(self.startTime) + 1) })).toBe(
      false,
    )
  })

  it('has no identity for a pid that does not exist', () => {
    expect(processIdentity(2 ** 22 + 7)).toBeUndefined()
    expect(processAlive({ pid: 2 ** 22 + 7, startTime: '1' })).toBe(false)
  })

  it('reads names holding spaces and parentheses', async () => {
    // The name is the executable's file name: ") (" in it must not shift the fields.
    const dir = mkdtempSync(join(tmpdir(), 'probe-'))
    const exe = join(dir, 'a) (b c')
    copyFileSync('/bin/sleep', exe)
    chmodSync(exe, 0o755)
    const child = spawn(exe, ['30'])
    await once(child, 'spawn')
    try {
      expect(readFileSync(`/proc/${child.pid}/stat`, 'utf8')).toContain('(a) (b c)')
      const id = processIdentity(child.pid!)
      expect(id?.startTime).toMatch(/^\d+$/)
      expect(processAlive(id!)).toBe(true)
    } finally {
      child.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
