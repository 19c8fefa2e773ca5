import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { hostIdentity, processAlive } from './replica.js'

describe('a replica judges another on its own host by its pid', () => {
  it('this process is alive, a reaped child is not', async () => {
    expect(processAlive(process.pid)).toBe(true)
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
    const pid = child.pid as number
    await new Promise((resolve) => child.once('exit', resolve))
    expect(processAlive(pid)).toBe(false)
  })

  it('the host identity names the host, its boot and its pid namespace, and is stable', () => {
    const id = hostIdentity()
    expect(id).toMatch(/^[^/]+\/[0-9a-f-]{36}\/pid:\[\d+\]$/)
    expect(hostIdentity()).toBe(id)
  })
})
