import { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { useWarren } from '../helpers/warren-fixture.js'

describe('warren up with the official SDK', () => {
  const warren = useWarren()

  it('creates a sandbox, runs a command through the proxy and kills it', async () => {
    const sbx = await Sandbox.create({ ...warren().sdk, metadata: { suite: 'smoke' } })
    try {
      const r = await sbx.commands.run('echo hello; hostname')
      expect(r.stdout).toBe(`hello\n${sbx.sandboxId}\n`)
      expect(await sbx.isRunning()).toBe(true)
    } finally {
      expect(await sbx.kill()).toBe(true)
    }
    expect(await sbx.isRunning()).toBe(false)
  })
})
