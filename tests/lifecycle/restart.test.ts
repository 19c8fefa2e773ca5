// Paused sandboxes across a restart of Warren: frozen processes that survive
// it resume hot, files-only snapshots and snapshots whose frozen processes
// were lost behind the node's back resume cold with their files.
import { spawnSync } from 'node:child_process'
import type { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { eventually } from '../helpers/api-client.js'
import { CLI } from '../helpers/cli.js'
import {
  connect,
  containerState,
  detailOrGone,
  killSandboxProcesses,
  layerFile,
  pause,
} from '../helpers/lifecycle.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { underGvisor } from '../helpers/test-isolation.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)
const COUNTER =
  'i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new && mv /tmp/count.new /tmp/count; sleep 0.1; done'

const create = () =>
  sandboxes.create({
    timeoutMs: 120_000,
    envs: { KEPT: 'env' },
    metadata: { suite: 'lifecycle-restart' },
  })

const count = (id: string) => Number(layerFile(warren(), id, 'tmp/count') ?? Number.NaN)

/** A sandbox with a file and a running counter. */
async function prepare(): Promise<Sandbox> {
  const sbx = await create()
  await sbx.files.write('/home/user/kept.txt', `kept by ${sbx.sandboxId}\n`)
  await sbx.commands.run(COUNTER, { background: true })
  await eventually('the counter counts', () => count(sbx.sandboxId) >= 3, 10_000)
  return sbx
}

/** Files intact, a fresh process tree, env and token working. */
async function expectCold(sbx: Sandbox): Promise<void> {
  const res = await connect(warren(), sbx.sandboxId, { timeout: 60 })
  expect(res.status).toBe(201)
  expect(res.body.resumedFrom).toBe('files')
  expect(await sbx.files.read('/home/user/kept.txt')).toBe(`kept by ${sbx.sandboxId}\n`)
  expect((await sbx.commands.run('echo "$KEPT"')).stdout).toBe('env\n')
  expect((await sbx.commands.run('ps -eo args')).stdout).not.toContain('count.new')
}

describe('across a restart of Warren', () => {
  it('frozen processes resume hot; files-only and lost-process snapshots resume cold', async () => {
    const [hot, files, lost] = await Promise.all([prepare(), prepare(), prepare()])
    expect(await pause(warren(), hot.sandboxId)).toBe(204)
    expect(await pause(warren(), files.sandboxId, false)).toBe(204)
    expect(await pause(warren(), lost.sandboxId)).toBe(204)
    const hotAt = count(hot.sandboxId)

    await warren().stop()
    // Behind the node's back: the frozen processes of one sandbox die.
    expect(containerState(warren(), lost.sandboxId)?.status).toBe('paused')
    await killSandboxProcesses(warren(), lost.sandboxId)
    await warren().start()

    // The API still reports all three paused.
    for (const s of [hot, files, lost]) {
      expect((await detailOrGone(warren(), s.sandboxId))?.state).toBe('paused')
    }
    expect(containerState(warren(), hot.sandboxId)?.status).toBe('paused')
    expect(count(hot.sandboxId)).toBe(hotAt)

    const res = await connect(warren(), hot.sandboxId, { timeout: 60 })
    expect(res.status).toBe(201)
    expect(res.body.resumedFrom).toBe('memory')
    await eventually('the counter continues', () => count(hot.sandboxId) > hotAt, 5000)
    expect(count(hot.sandboxId)).toBeLessThan(hotAt + 30)
    expect(await hot.files.read('/home/user/kept.txt')).toBe(`kept by ${hot.sandboxId}\n`)

    await expectCold(files)
    await expectCold(lost)
  })

  it('frozen processes lost while Warren runs: the resume is cold, with the files', async () => {
    const sbx = await prepare()
    expect(await pause(warren(), sbx.sandboxId)).toBe(204)
    await killSandboxProcesses(warren(), sbx.sandboxId)
    // Until runc sees the container stopped, a thaw would look like a success.
    // (runsc keeps saying paused; its sandbox process is gone already, which
    // is what the node reads: killSandboxProcesses waited for every process.)
    await eventually(
      'runc reports the container stopped',
      () => underGvisor || containerState(warren(), sbx.sandboxId)?.status === 'stopped',
      5000,
    )
    await expectCold(sbx)
  })
})

describe('a restart right after a crash', () => {
  it('starts at once after a SIGKILL (the lock died with its holder), and refuses a second live process', async () => {
    const sbx = await create()
    await warren().stop(true)
    // No pause: a supervisor restarts it immediately.
    await warren().start()
    expect((await sbx.commands.run('echo alive')).stdout).toBe('alive\n')

    // A second Warren on the same data directory is refused while the first lives.
    const second = spawnSync(process.execPath, [CLI, 'orchestrator'], {
      env: { ...process.env, ...warren().env },
      encoding: 'utf8',
      timeout: 30_000,
    })
    expect(second.status).not.toBe(0)
    expect(second.stderr).toMatch(/data directory .* is in use by process \d+/)
  })
})
