// gVisor snapshots and forks that keep memory: a counter process (counter.ts) goes on
// counting in a sandbox created from the snapshot and in a fork, from where
// it was (a fresh boot would have no counter, or start it again at 1). The
// source runs on after the checkpoint. Privileged: root, runsc, runc, ip, nft.
import type { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { api, eventually } from '../helpers/api-client.js'
import { type CreatedSandbox, handle } from '../helpers/lifecycle.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'
import { COUNTER, continues, count } from './counter.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)

/** A gVisor sandbox whose counter has counted past 10. */
async function counting(): Promise<Sandbox> {
  const created = await sandboxes.createRaw({
    timeout: 300,
    isolation: 'gvisor',
    metadata: { suite: 'gvisor-checkpoint' },
  })
  const sbx = handle(warren(), created)
  const proc = await sbx.commands.run(COUNTER, { background: true })
  await proc.disconnect()
  await eventually('the counter counts', async () => (await count(sbx).catch(() => 0)) > 10, 30_000)
  return sbx
}

describe('gVisor checkpoint and restore', () => {
  it('a sandbox created from a snapshot continues its counter; the source runs on', async () => {
    const src = await counting()
    const before = await count(src)
    const snap = await src.createSnapshot()
    // The source was checkpointed and restored in place: it counts on.
    await continues(src, before)

    const created = (await sandboxes.createRaw({
      templateID: snap.snapshotId,
      isolation: 'gvisor',
      timeout: 300,
    })) as CreatedSandbox & { resumedFrom?: string }
    expect(created.resumedFrom).toBe('memory')
    const copy = handle(warren(), created)
    await continues(copy, before)
    // Its own sandbox: its own id, envd answers with its new settings.
    expect((await copy.commands.run('echo $E2B_SANDBOX_ID')).stdout.trim()).toBe(created.sandboxID)
    const got = await api(warren(), 'GET', `/sandboxes/${created.sandboxID}`)
    expect(got.body).toMatchObject({ isolation: 'gvisor', resumedFrom: 'memory' })
  })

  it('a fork continues its source’s counter', async () => {
    const src = await counting()
    const before = await count(src)
    const res = await api(warren(), 'POST', `/sandboxes/${src.sandboxId}/fork`, {
      json: { count: 1 },
    })
    expect(res.status, res.text).toBe(201)
    const [fork] = res.body as Array<{
      sandbox: CreatedSandbox & { resumedFrom?: string; forkedFrom: string }
    }>
    sandboxes.add(fork!.sandbox.sandboxID)
    expect(fork!.sandbox.forkedFrom).toBe('memory')
    expect(fork!.sandbox.resumedFrom).toBe('memory')
    await continues(handle(warren(), fork!.sandbox), before)
    await continues(src, before)
  })

  it('a sandbox holding a server gets a snapshot of its files; it runs on, its server too', async () => {
    const src = await counting()
    await (
      await src.commands.run('python3 -m http.server 8080 --bind 0.0.0.0', { background: true })
    ).disconnect()
    await eventually(
      'the server listens',
      async () =>
        (
          await src.commands
            .run('curl -s -o /dev/null -w "%{http_code}" localhost:8080/')
            .catch(() => undefined)
        )?.stdout === '200',
    )
    // gVisor cannot save a listening socket: the snapshot keeps the files only.
    const snap = await src.createSnapshot()
    await continues(src, 11)
    expect(
      (await src.commands.run('curl -s -o /dev/null -w "%{http_code}" localhost:8080/')).stdout,
    ).toBe('200')
    const created = (await sandboxes.createRaw({
      templateID: snap.snapshotId,
      isolation: 'gvisor',
      timeout: 300,
    })) as CreatedSandbox & { resumedFrom?: string }
    expect(created.resumedFrom).toBeUndefined()
  })

  it('a runc create from a gVisor snapshot boots fresh on its files', async () => {
    const src = await counting()
    const snap = await src.createSnapshot()
    const created = (await sandboxes.createRaw({
      templateID: snap.snapshotId,
      isolation: 'runc',
      timeout: 300,
    })) as CreatedSandbox & { resumedFrom?: string }
    expect(created.resumedFrom).toBeUndefined()
    const copy = handle(warren(), created)
    const frozen = await count(copy)
    await new Promise((r) => setTimeout(r, 500))
    // The file came along; no process counts it on.
    expect(await count(copy)).toBe(frozen)
  })
})
