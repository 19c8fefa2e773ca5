// The packet size of sandboxes' links (WARREN_SANDBOX_GSO_MAX_SIZE, BIG TCP):
// the link-gso tool on a veth pair of its own, then what `warren up` gives a
// runc sandbox's veth (raised, both ends), a gVisor sandbox's (the kernel's
// 64 KiB: its netstack reads whole frames), and a node configured with 64 KiB.
// Privileged: needs root, runc, runsc, ip and nft.
import { execFileSync, spawnSync } from 'node:child_process'
import type { Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { linkGsoTool } from '../../packages/shared/src/link-gso.js'
import { handle } from '../helpers/lifecycle.js'
import { sandboxLink } from '../helpers/node-fixture.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren, type WarrenFixture } from '../helpers/warren-fixture.js'

const tool = linkGsoTool()

function gso(args: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync(tool!, args, { encoding: 'utf8' })
  return { status: r.status, out: r.stdout.trim(), err: r.stderr.trim() }
}

const hostLinks = () => execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })

describe('link-gso', () => {
  const ns = `wgso${process.pid}`
  const host = `wgso${process.pid}`
  let before = ''

  beforeAll(() => {
    before = hostLinks()
    execFileSync('ip', ['netns', 'add', ns])
    execFileSync('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
  })
  afterAll(() => {
    spawnSync('ip', ['link', 'del', host])
    spawnSync('ip', ['netns', 'del', ns])
  })

  it('is built, reads and sets each end, and refuses what it cannot do', () => {
    expect(tool).toBeDefined()
    expect(gso([host])).toEqual({ status: 0, out: '65536 65536', err: '' })
    expect(gso(['-n', ns, 'eth0'])).toEqual({ status: 0, out: '65536 65536', err: '' })

    expect(gso(['-n', ns, 'eth0', '262144']).status).toBe(0)
    expect(gso(['-n', ns, 'eth0']).out).toBe('262144 262144')
    expect(gso([host]).out).toBe('65536 65536')
    expect(gso([host, '524280']).status).toBe(0)
    expect(gso([host]).out).toBe('524280 524280')

    const over = gso([host, '524281'])
    expect(over.status).toBe(1)
    expect(over.err).toMatch(/over the device's limit 524280/)
    for (const bad of ['65535', '64k', '']) {
      const r = gso([host, bad])
      expect(r.status).toBe(2)
      expect(r.err).toMatch(/at least 65536/)
    }
    expect(gso(['no-such-link'])).toMatchObject({
      status: 1,
      err: expect.stringMatching(/no such link/),
    })
    expect(gso(['-n', `${ns}x`, 'eth0'])).toMatchObject({
      status: 1,
      err: expect.stringMatching(/eth0 in .*x: opening the namespace/),
    })
    expect(gso(['-n', '../x', 'eth0']).status).toBe(2)
    // Refusals changed nothing, and no link of the host moved or changed.
    expect(gso([host]).out).toBe('524280 524280')
    expect(gso(['-n', ns, 'eth0']).out).toBe('262144 262144')
    expect(hostLinks().replace(new RegExp(`^\\d+: ${host}@.*\\n(\\s.*\\n)?`, 'm'), '')).toBe(before)
  })
})

function sizes(w: WarrenFixture, sbx: Sandbox): string[] {
  const { hostIf, netns } = sandboxLink(w, sbx.sandboxId)
  return [gso([hostIf]).out, gso(['-n', netns, 'eth0']).out]
}

describe('a node with the default size', () => {
  const warren = useWarren()
  const sandboxes = useSandboxes(warren)

  it('raises both ends of a runc sandbox link, and keeps 64 KiB for gVisor', async () => {
    const runc = handle(warren(), await sandboxes.createRaw({ timeout: 120 }))
    expect(sizes(warren(), runc)).toEqual(['262144 262144', '262144 262144'])
    const gvisor = handle(
      warren(),
      await sandboxes.createRaw({ timeout: 120, isolation: 'gvisor' }),
    )
    expect(sizes(warren(), gvisor)).toEqual(['65536 65536', '65536 65536'])
  })
})

describe('a node configured with 64 KiB', () => {
  const warren = useWarren({ env: { WARREN_SANDBOX_GSO_MAX_SIZE: '65536' } })
  const sandboxes = useSandboxes(warren)

  it('leaves the kernel default', async () => {
    const sbx = handle(warren(), await sandboxes.createRaw({ timeout: 120 }))
    expect(sizes(warren(), sbx)).toEqual(['65536 65536', '65536 65536'])
  })
})
