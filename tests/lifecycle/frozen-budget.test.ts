// The node's frozen-memory budget: when frozen sandboxes hold more than
// WARREN_MAX_FROZEN_MEMORY_MB, the oldest are dropped to files-only
// snapshots (a gVisor sandbox's processes saved with them). And paused sandboxes do not count against the team's limit of
// concurrent sandboxes.
import type { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { api, eventually, expectApiError, sleep } from '../helpers/api-client.js'
import { connect, containerState, pause } from '../helpers/lifecycle.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { underGvisor } from '../helpers/test-isolation.js'
import { useWarren } from '../helpers/warren-fixture.js'

// An idle sandbox holds ~15 MB; each here holds ~40 MB more. One frozen
// sandbox fits in 80 MB, two do not.
const BUDGET_MB = 80
const warren = useWarren({
  env: { WARREN_MAX_FROZEN_MEMORY_MB: String(BUDGET_MB), WARREN_MAX_CONCURRENT_SANDBOXES: '2' },
})
const sandboxes = useSandboxes(warren)

async function create(): Promise<Sandbox> {
  const sbx = await sandboxes.create({
    timeoutMs: 120_000,
    metadata: { suite: 'lifecycle-budget' },
  })
  await sbx.files.write('/home/user/kept.txt', sbx.sandboxId)
  await sbx.commands.run(
    `python3 -c "import time; b = bytearray(40 * 2**20); open('/tmp/holding', 'w').close(); time.sleep(3600)"`,
    { background: true },
  )
  await sbx.commands.run('while [ ! -e /tmp/holding ]; do sleep 0.05; done')
  return sbx
}

const holder = async (sbx: Sandbox) =>
  (await sbx.commands.run('ps -eo args')).stdout.includes('bytearray')

describe('the frozen-memory budget', () => {
  it('pausing a second sandbox over the budget drops the older one to files', async () => {
    const [older, newer] = await Promise.all([create(), create()])
    expect(await pause(warren(), older.sandboxId)).toBe(204)
    // Within the budget alone: it stays frozen. Nothing to wait for: the wait
    // gives the policy the time it would take to (wrongly) drop it.
    await sleep(500)
    expect(containerState(warren(), older.sandboxId)?.status).toBe('paused')

    // Spaced in time: pausedAt orders them, and the older must be older.
    await sleep(20)
    expect(await pause(warren(), newer.sandboxId)).toBe(204)
    // The policy runs behind the pause: the older one's processes go.
    await eventually(
      'the older sandbox is dropped to files',
      () => containerState(warren(), older.sandboxId) === undefined,
      10_000,
    )
    expect(containerState(warren(), newer.sandboxId)?.status).toBe('paused')

    const a = await connect(warren(), older.sandboxId, { timeout: 60 })
    expect(await older.files.read('/home/user/kept.txt')).toBe(older.sandboxId)
    // Under gVisor its processes were saved to disk with its files (a checkpoint).
    expect(a.body.resumedFrom).toBe(underGvisor ? 'memory' : 'files')
    expect(await holder(older)).toBe(underGvisor)
    const b = await connect(warren(), newer.sandboxId, { timeout: 60 })
    expect(b.body.resumedFrom).toBe('memory')
    expect(await holder(newer)).toBe(true)
  })

  it('paused sandboxes do not count against the team limit; a resume needs a place', async () => {
    // Two running sandboxes: the limit of 2 is reached.
    const [first] = await Promise.all([
      sandboxes.create({ timeoutMs: 60_000 }),
      sandboxes.create({ timeoutMs: 60_000 }),
    ])
    const full = await api(warren(), 'POST', '/v2/sandboxes', { json: { templateID: 'base' } })
    expectApiError(full, 429)
    expect(await pause(warren(), first.sandboxId)).toBe(204)
    const third = await sandboxes.create({ timeoutMs: 60_000 })
    // Resuming takes a place again: over the limit it is refused and stays paused.
    const connectFirst = () =>
      api(warren(), 'POST', `/v2/sandboxes/${first.sandboxId}/connect`, { json: {} })
    expectApiError(await connectFirst(), 429, /limit/)
    expect((await api(warren(), 'GET', `/sandboxes/${first.sandboxId}`)).body).toMatchObject({
      state: 'paused',
    })
    expect(await third.kill()).toBe(true)
    expect((await connectFirst()).status).toBe(201)
  })
})
