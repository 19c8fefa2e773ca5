import { createLogger, loadOrchestratorConfig } from '@warren/shared'
import { describe, expect, it } from 'vitest'
import { LinkGso } from './link-gso.js'

const names = { hostIf: 'wt-v1', netns: 'wt-n1' }

/** A logger whose warnings are kept. */
function logged() {
  const warnings: string[] = []
  const log = createLogger('link-gso-test', 'warn', {
    write: (line: string) => void warnings.push(line),
  })
  return { log, warnings }
}

describe('WARREN_SANDBOX_GSO_MAX_SIZE', () => {
  const load = (v?: string) =>
    loadOrchestratorConfig(
      { nodeId: 'unit', memoryCapacityMb: 1024 },
      v === undefined ? {} : { WARREN_SANDBOX_GSO_MAX_SIZE: v },
    ).sandboxGsoMaxSize

  it("defaults to 256 KiB and takes 64 KiB up to a veth's 524280", () => {
    expect(load()).toBe(262144)
    expect(load('65536')).toBe(65536)
    expect(load('524280')).toBe(524280)
  })

  it('refuses sizes a veth cannot take, naming the variable', () => {
    for (const v of ['65535', '524281', '256k', '-1'])
      expect(() => load(v)).toThrow(/WARREN_SANDBOX_GSO_MAX_SIZE/)
  })
})

describe('LinkGso', () => {
  it('leaves links alone at the kernel default, without a word', async () => {
    const { log, warnings } = logged()
    expect(await new LinkGso(65536, log, '/nonexistent/link-gso').raise(names)).toBeUndefined()
    expect(warnings).toEqual([])
  })

  it('keeps the default when the tool fails, said once, and stops trying', async () => {
    const { log, warnings } = logged()
    const gso = new LinkGso(262144, log, '/nonexistent/link-gso')
    expect(await gso.raise(names)).toBeUndefined()
    expect(await gso.raise(names)).toBeUndefined()
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/sandbox links keep 64 KiB packets/)
    expect(warnings[0]).toMatch(/nonexistent/)
  })

  it('throws when lowering fails: a gVisor sandbox must not start on raised links', async () => {
    const { log } = logged()
    await expect(new LinkGso(262144, log, '/nonexistent/link-gso').lower(names)).rejects.toThrow(
      /nonexistent/,
    )
  })
})
