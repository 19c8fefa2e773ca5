import { describe, expect, it } from 'vitest'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

describe('warren up with the official SDK', () => {
  const warren = useWarren()
  const sandboxes = useSandboxes(warren)

  it('creates a sandbox, runs a command through the proxy and kills it', async () => {
    const sbx = await sandboxes.create({ metadata: { suite: 'smoke' } })
    const r = await sbx.commands.run('echo hello; hostname')
    expect(r.stdout).toBe(`hello\n${sbx.sandboxId}\n`)
    expect(await sbx.isRunning()).toBe(true)
    expect(await sbx.kill()).toBe(true)
    expect(await sbx.isRunning()).toBe(false)
  })
})
