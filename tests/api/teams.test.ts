// Teams and their limits through the CLI, over the admin API of a real
// `warren up`: the first key is an admin key; `warren teams create`, `keys
// create --team`, `teams set-limits` and `teams list`; the new team's limit
// holds against the SDK; a team key is refused the admin API (403) and the
// CLI says so, changing nothing.
import { RateLimitError, Sandbox } from 'e2b'
import { afterEach, describe, expect, it } from 'vitest'
import { api, expectApiError } from '../helpers/api-client.js'
import { connectionFlags, runCli } from '../helpers/cli.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const made: Array<{ id: string; key: string }> = []

afterEach(async () => {
  for (const { id, key } of made.splice(0))
    await Sandbox.kill(id, { ...warren().sdk, apiKey: key }).catch(() => {})
})

async function cli(args: string[], apiKey = warren().apiKey) {
  const flags = connectionFlags(warren()).map((f) => (f === warren().apiKey ? apiKey : f))
  const res = await runCli(warren(), [...args, ...flags])
  return res
}

describe('teams through the CLI', () => {
  it('creates a team, gives it a key and a limit that creates obey', async () => {
    const created = await cli(['teams', 'create', 'acme', '--max-concurrent', '2', '--json'])
    expect(created.code, created.stderr).toBe(0)
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'acme', maxConcurrent: 2 })

    const key = await cli(['keys', 'create', '--team', 'acme', '--name', 'ci', '--json'])
    expect(key.code, key.stderr).toBe(0)
    const acmeKey = (JSON.parse(key.stdout) as { key: string; admin: boolean }).key
    expect(JSON.parse(key.stdout).admin).toBe(false)

    const limits = await cli(['teams', 'set-limits', 'acme', '--max-concurrent', '1', '--json'])
    expect(limits.code, limits.stderr).toBe(0)
    expect(JSON.parse(limits.stdout)).toMatchObject({ maxConcurrent: 1 })

    const sdk = { ...warren().sdk, apiKey: acmeKey }
    const sbx = await Sandbox.create({ ...sdk, timeoutMs: 60_000 })
    made.push({ id: sbx.sandboxId, key: acmeKey })
    await expect(Sandbox.create({ ...sdk, timeoutMs: 60_000 })).rejects.toBeInstanceOf(
      RateLimitError,
    )
    // The default team is not held by acme's limit, nor sees acme's sandbox.
    const listed = await api(warren(), 'GET', '/v2/sandboxes')
    expect(JSON.stringify(listed.body)).not.toContain(sbx.sandboxId)

    const list = await cli(['teams', 'list', '--json'])
    expect(list.code, list.stderr).toBe(0)
    const acme = (JSON.parse(list.stdout) as Array<Record<string, unknown>>).find(
      (t) => t.name === 'acme',
    )
    expect(acme).toMatchObject({ sandboxes: '1/1', keys: 1, isolation: '-' })

    // A policy: the CLI sets and lifts it; a name the API does not know is refused.
    const strict = await cli([
      'teams',
      'set-limits',
      'acme',
      '--require-isolation',
      'gvisor',
      '--json',
    ])
    expect(strict.code, strict.stderr).toBe(0)
    expect(JSON.parse(strict.stdout)).toMatchObject({ requiredIsolation: 'gvisor' })
    const bad = await cli(['teams', 'set-limits', 'acme', '--require-isolation', 'kvm'])
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toContain('400')
    const any = await cli(['teams', 'set-limits', 'acme', '--require-isolation', 'none', '--json'])
    expect(any.code, any.stderr).toBe(0)
    expect(JSON.parse(any.stdout)).toMatchObject({ requiredIsolation: null })
    // `none` lifts a limit too.
    const set = await cli(['teams', 'set-limits', 'acme', '--max-memory', '2048', '--json'])
    expect(JSON.parse(set.stdout)).toMatchObject({ maxMemoryMb: 2048 })
    const lifted = await cli(['teams', 'set-limits', 'acme', '--max-memory', 'none', '--json'])
    expect(lifted.code, lifted.stderr).toBe(0)
    expect(JSON.parse(lifted.stdout)).toMatchObject({ maxMemoryMb: null })
  })

  it('refuses a team key the admin API, and the CLI says so', async () => {
    const made = await api(warren(), 'POST', '/api-keys', { json: { name: 'plain' } })
    const plain = (made.body as { key: string }).key
    const res = await cli(['teams', 'create', 'sneaky'], plain)
    expect(res.code).not.toBe(0)
    expect(res.stderr).toContain('403')
    expectApiError(await api(warren(), 'GET', '/admin/teams', { key: plain }), 403)
    const teams = await api(warren(), 'GET', '/admin/teams')
    expect((teams.body as Array<{ name: string }>).map((t) => t.name)).not.toContain('sneaky')
  })
})
