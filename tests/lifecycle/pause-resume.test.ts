// Pause and resume through the API and the SDK: the statuses of pause, kill
// and delete of paused sandboxes (and the snapshot they remove), hot resume
// that keeps processes and an interpreter's memory, cold resume that keeps
// files, config that survives both, one resume for concurrent connects, and
// auto-pause at endAt.

import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { type CommandHandle, Sandbox, type SandboxOpts } from 'e2b'
import { describe, expect, it } from 'vitest'
import { api, eventually, expectApiError, sleep } from '../helpers/api-client.js'
import {
  connect,
  containerState,
  counter,
  detailOrGone,
  layerFile,
  pause,
  sandboxDir,
  waitForState,
} from '../helpers/lifecycle.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)
const UNKNOWN = 'zzzzzzzzzzzzzzzzzzz0'
/** Increments /tmp/count ten times a second; each value replaces the last atomically. */
const COUNTER =
  'i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new && mv /tmp/count.new /tmp/count; sleep 0.1; done'

const create = (opts: SandboxOpts = {}) =>
  sandboxes.create({
    timeoutMs: 120_000,
    ...opts,
    metadata: { suite: 'lifecycle-pause', ...opts.metadata },
  })

/** The counter as the sandbox's writable layer holds it (readable from the host while frozen). */
function count(id: string): number {
  return Number(layerFile(warren(), id, 'tmp/count') ?? Number.NaN)
}

async function startCounter(sbx: Sandbox): Promise<void> {
  await sbx.commands.run(COUNTER, { background: true })
  await eventually('the counter counts', () => count(sbx.sandboxId) >= 3, 10_000)
}

/** A live `python3 -i` whose stdout the test collects. */
async function startPython(sbx: Sandbox): Promise<{ py: CommandHandle; out: () => string }> {
  let out = ''
  const py = await sbx.commands.run('python3 -i -u -q', {
    background: true,
    stdin: true,
    timeoutMs: 0,
    onStdout: (d) => {
      out += d
    },
  })
  return { py, out: () => out }
}

describe('pause over HTTP', () => {
  it('answers 204, then 409 for a paused sandbox, 404 for an unknown one', async () => {
    const sbx = await create()
    expect(await pause(warren(), sbx.sandboxId)).toBe(204)
    const again = await api(warren(), 'POST', `/sandboxes/${sbx.sandboxId}/pause`)
    expectApiError(again, 409, /paused/)
    expectApiError(await api(warren(), 'POST', `/sandboxes/${UNKNOWN}/pause`), 404)
    // The SDK reads the 409 as "already paused".
    expect(await sbx.pause()).toBe(false)
    const d = (await detailOrGone(warren(), sbx.sandboxId))!
    expect(d).toMatchObject({ state: 'paused', pausedKind: 'memory' })
    expect(Date.parse(d.pausedAt as string)).toBeLessThanOrEqual(Date.now())
    expect(containerState(warren(), sbx.sandboxId)?.status).toBe('paused')
    // The SDK's isRunning() reads envd's /health through the proxy: 502 while paused.
    expect(await sbx.isRunning()).toBe(false)
  })

  it('DELETE of a paused sandbox answers 204, then 404, and removes its snapshot', async () => {
    for (const memory of [true, false]) {
      const sbx = await create()
      await sbx.files.write('/home/user/kept.txt', 'kept\n')
      expect(await pause(warren(), sbx.sandboxId, memory)).toBe(204)
      const dir = sandboxDir(warren(), sbx.sandboxId)
      expect(layerFile(warren(), sbx.sandboxId, 'home/user/kept.txt')).toBe('kept\n')
      // A files-only snapshot holds no processes; a frozen one keeps its container.
      expect(containerState(warren(), sbx.sandboxId)?.status).toBe(memory ? 'paused' : undefined)
      const del = await api(warren(), 'DELETE', `/sandboxes/${sbx.sandboxId}`)
      expect(del.status, del.text).toBe(204)
      expectApiError(await api(warren(), 'DELETE', `/sandboxes/${sbx.sandboxId}`), 404)
      expectApiError(await api(warren(), 'GET', `/sandboxes/${sbx.sandboxId}`), 404)
      // The kill answers once the sandbox is stopped; its teardown follows.
      await eventually(`${dir} is removed (memory: ${memory})`, () => !existsSync(dir), 15_000)
      await eventually(
        'its container is gone',
        () => containerState(warren(), sbx.sandboxId) === undefined,
        15_000,
      )
      expectApiError(await api(warren(), 'POST', `/v2/sandboxes/${sbx.sandboxId}/connect`), 404)
    }
  })

  it('the SDK kill of a paused sandbox removes its snapshot', async () => {
    const sbx = await create()
    expect(await sbx.pause({ keepMemory: false })).toBe(true)
    const dir = sandboxDir(warren(), sbx.sandboxId)
    expect(existsSync(dir)).toBe(true)
    expect(await Sandbox.kill(sbx.sandboxId, warren().sdk)).toBe(true)
    await eventually('its snapshot is removed', () => !existsSync(dir), 15_000)
    expect(await Sandbox.kill(sbx.sandboxId, warren().sdk)).toBe(false)
  })
})

describe('hot resume', () => {
  it('keeps files, a counting process and a live Python interpreter; resumedFrom is memory', async () => {
    const sbx = await create()
    await sbx.files.write('/home/user/notes.txt', 'before the pause\n')
    await startCounter(sbx)
    const { py, out } = await startPython(sbx)
    await py.sendStdin('x = 42\nprint("set", x)\n')
    await eventually('python set x', () => out().includes('set 42\n'), 10_000)

    expect(await sbx.pause()).toBe(true)
    // Frozen: the counter does not move while paused (for 15 of its ticks; the
    // wait is what is tested).
    const frozenAt = count(sbx.sandboxId)
    await sleep(1500)
    expect(count(sbx.sandboxId)).toBe(frozenAt)

    const resumed = await connect(warren(), sbx.sandboxId, { timeout: 120 })
    expect(resumed.status).toBe(201)
    expect(resumed.body.resumedFrom).toBe('memory')
    expect((await detailOrGone(warren(), sbx.sandboxId))?.resumedFrom).toBe('memory')
    // The same process continues from where it stopped (a restart would count from 1).
    await eventually('the counter moves again', () => count(sbx.sandboxId) > frozenAt, 5000)
    expect(count(sbx.sandboxId)).toBeLessThan(frozenAt + 30)
    expect(await sbx.files.read('/home/user/notes.txt')).toBe('before the pause\n')
    // The interpreter kept its variable; its output stream survived the pause.
    await py.sendStdin('print("x is", x)\n')
    await eventually('python printed x', () => out().includes('x is 42\n'), 10_000)
    await py.kill()
  })

  it('keeps tokens and config (GET before and after), and endAt restarts from the resume', async () => {
    const created = await sandboxes.createRaw({
      timeout: 120,
      metadata: { suite: 'lifecycle-pause', who: 'config' },
      envVars: { GREETING: 'hello from create' },
      autoPause: true,
      lifecycle: { autoResume: true, keepalive: { traffic: { enabled: true } } },
      network: { allowPublicTraffic: false },
    })
    const id = created.sandboxID
    expect(created.envdAccessToken).toMatch(/\S{16,}/)
    expect(created.trafficAccessToken).toMatch(/\S{16,}/)
    const before = (await detailOrGone(warren(), id))!

    expect(await pause(warren(), id)).toBe(204)
    const paused = (await detailOrGone(warren(), id))!
    expect(paused).toMatchObject({ state: 'paused', pausedKind: 'memory' })
    // Paused for a while, so that a lease counted from the create or the
    // pause would show against one counted from the resume.
    await sleep(1000)

    const t0 = Date.now()
    const resumed = await connect(warren(), id, { timeout: 30 })
    const t1 = Date.now()
    expect(resumed.status).toBe(201)
    // The tokens the SDK holds stay valid: the connect answers the same ones.
    expect(resumed.body.envdAccessToken).toBe(created.envdAccessToken)
    expect(resumed.body.trafficAccessToken).toBe(created.trafficAccessToken)
    const after = (await detailOrGone(warren(), id))!
    const endAt = Date.parse(after.endAt)
    expect(endAt).toBeGreaterThanOrEqual(t0 + 30_000)
    expect(endAt).toBeLessThanOrEqual(t1 + 30_000)
    expect(Date.parse(after.startedAt)).toBeGreaterThanOrEqual(t0)
    expect(after.pausedKind).toBeUndefined()
    const stable = (d: Record<string, unknown>) => {
      const { state: _s, startedAt: _st, endAt: _e, resumedFrom: _r, ...rest } = d
      return rest
    }
    expect(stable(after)).toEqual(stable(before))
    expect(after).toMatchObject({
      envdAccessToken: created.envdAccessToken,
      metadata: { suite: 'lifecycle-pause', who: 'config' },
      lifecycle: {
        onTimeout: 'pause',
        autoResume: true,
        keepalive: { traffic: { enabled: true } },
      },
      network: { allowPublicTraffic: false },
    })

    const sbx = await Sandbox.connect(id, { ...warren().sdk, timeoutMs: 30_000 })
    expect((await sbx.commands.run('echo "$GREETING"')).stdout).toBe('hello from create\n')
  })

  it('ten concurrent connects run one resume and all get its outcome', async () => {
    const sbx = await create()
    await sbx.files.write('/home/user/one.txt', 'one\n')
    expect(await sbx.pause()).toBe(true)
    const labels = { from: 'memory', trigger: 'api' }
    const resumes = await counter(warren(), 'warren_sandboxes_resumed_total', labels)
    const all = await Promise.all(
      Array.from({ length: 10 }, () =>
        api(warren(), 'POST', `/v2/sandboxes/${sbx.sandboxId}/connect`, { json: {} }),
      ),
    )
    for (const res of all) {
      expect([200, 201], res.text).toContain(res.status)
      expect(res.body).toMatchObject({
        sandboxID: sbx.sandboxId,
        resumedFrom: 'memory',
        envdAccessToken: (all[0]!.body as { envdAccessToken: string }).envdAccessToken,
      })
    }
    expect(all.filter((r) => r.status === 201).length).toBeGreaterThanOrEqual(1)
    expect(await counter(warren(), 'warren_sandboxes_resumed_total', labels)).toBe(resumes + 1)
    expect(await sbx.files.read('/home/user/one.txt')).toBe('one\n')
  })
})

describe('cold resume', () => {
  it('pause({ keepMemory: false }): files stay, processes are gone, token, env vars and metadata work', async () => {
    const sbx = await create({ envs: { FROM_CREATE: 'yes' }, metadata: { who: 'cold' } })
    const blob = randomBytes(64 * 1024).toString('base64')
    await sbx.files.write('/home/user/blob.txt', blob)
    await startCounter(sbx)
    expect(await sbx.pause({ keepMemory: false })).toBe(true)
    expect((await detailOrGone(warren(), sbx.sandboxId))?.pausedKind).toBe('files')
    expect(containerState(warren(), sbx.sandboxId)).toBeUndefined()
    const stoppedAt = count(sbx.sandboxId)

    const resumed = await connect(warren(), sbx.sandboxId)
    expect(resumed.status).toBe(201)
    expect(resumed.body.resumedFrom).toBe('files')
    const d = (await detailOrGone(warren(), sbx.sandboxId))!
    expect(d).toMatchObject({ state: 'running', resumedFrom: 'files', metadata: { who: 'cold' } })
    // The SDK instance from before the pause keeps working with its token.
    expect(await sbx.files.read('/home/user/blob.txt')).toBe(blob)
    expect((await sbx.commands.run('echo "$FROM_CREATE"')).stdout).toBe('yes\n')
    const ps = await sbx.commands.run('ps -eo args')
    expect(ps.stdout).not.toContain('count.new')
    // No counter left to move the file: five of its ticks pass without a change.
    await sleep(500)
    expect(count(sbx.sandboxId)).toBe(stoppedAt)
    // envd refuses the wrong token after a cold boot too.
    const res = await fetch(`${warren().proxyUrl}/files?path=/root/blob.txt`, {
      headers: { 'e2b-sandbox-id': sbx.sandboxId, 'x-access-token': 'wrong' },
    })
    expect(res.status).toBe(401)
  })

  it("connect({ onResume: 'reboot' }) of a frozen sandbox boots from its files", async () => {
    const sbx = await create()
    await sbx.files.write('/home/user/kept.txt', 'kept\n')
    await startCounter(sbx)
    expect(await sbx.pause()).toBe(true)
    await Sandbox.connect(sbx.sandboxId, { ...warren().sdk, onResume: 'reboot' })
    expect((await detailOrGone(warren(), sbx.sandboxId))?.resumedFrom).toBe('files')
    expect(await sbx.files.read('/home/user/kept.txt')).toBe('kept\n')
    expect((await sbx.commands.run('ps -eo args')).stdout).not.toContain('count.new')
  })
})

describe('auto-pause at endAt', () => {
  it("onTimeout 'pause' (and autoPause: false with lifecycle.onTimeout 'pause'): paused within 1 s of endAt", async () => {
    const tag = randomBytes(4).toString('hex')
    const running = async () => {
      const res = await api(warren(), 'GET', '/v2/sandboxes?state=running&limit=1000')
      return (res.body as { sandboxID: string }[]).map((s) => s.sandboxID)
    }
    const listed = async (state: string) => {
      const res = await api(
        warren(),
        'GET',
        `/v2/sandboxes?state=${state}&metadata=${encodeURIComponent(`tag=${tag}`)}`,
      )
      expect(res.status, res.text).toBe(200)
      return (res.body as { sandboxID: string }[]).map((s) => s.sandboxID).sort()
    }
    const [sdkMade, raw] = await Promise.all([
      create({ timeoutMs: 3000, lifecycle: { onTimeout: 'pause' }, metadata: { tag } }),
      // Older SDKs always send autoPause: false; it does not override lifecycle.onTimeout.
      sandboxes.createRaw({
        timeout: 3,
        autoPause: false,
        lifecycle: { onTimeout: 'pause' },
        metadata: { suite: 'lifecycle-pause', tag },
      }),
    ])
    const ids = [sdkMade.sandboxId, raw.sandboxID].sort()
    await sdkMade.files.write('/home/user/kept.txt', 'kept\n')
    expect(await listed('running')).toEqual(ids)
    const runningBefore = await running()
    expect(runningBefore).toEqual(expect.arrayContaining(ids))

    for (const id of ids) {
      const endAt = Date.parse((await detailOrGone(warren(), id))!.endAt)
      const { detail, seenAt } = await waitForState(warren(), id, 'paused', 10_000)
      expect(seenAt - endAt, id).toBeLessThanOrEqual(1000 + 100)
      expect(detail.pausedKind).toBe('memory')
      expect(detail.endAt).toBe(new Date(endAt).toISOString())
    }
    expect(await listed('paused')).toEqual(ids)
    expect(await listed('running')).toEqual([])
    const runningAfter = await running()
    expect(runningAfter.length).toBe(runningBefore.length - 2)
    expect(runningAfter).not.toEqual(expect.arrayContaining([ids[0]]))

    // And it comes back with its files.
    const resumed = await connect(warren(), sdkMade.sandboxId, { timeout: 60 })
    expect(resumed.body.resumedFrom).toBe('memory')
    expect(await sdkMade.files.read('/home/user/kept.txt')).toBe('kept\n')
  })
})

describe('lifecycle aliases at create', () => {
  it.each([
    ['autoPause: true with onTimeout kill', { autoPause: true, lifecycle: { onTimeout: 'kill' } }],
    [
      'autoResume.enabled: true with lifecycle.autoResume: false',
      { autoPause: true, autoResume: { enabled: true }, lifecycle: { autoResume: false } },
    ],
    [
      'autoResume with autoPauseMemory: false',
      { autoPause: true, autoPauseMemory: false, autoResume: { enabled: true } },
    ],
    [
      'lifecycle.autoResume with autoPauseMemory: false',
      { autoPauseMemory: false, lifecycle: { onTimeout: 'pause', autoResume: true } },
    ],
  ])('refuses %s with 400', async (_name, body) => {
    const res = await api(warren(), 'POST', '/v2/sandboxes', {
      json: { templateID: 'base', ...body },
    })
    expectApiError(res, 400)
  })

  it('accepts autoResume.enabled: false with lifecycle.autoResume: true (the alias at its default)', async () => {
    const created = await sandboxes.createRaw({
      timeout: 30,
      metadata: { suite: 'lifecycle-pause' },
      autoPause: false,
      autoResume: { enabled: false },
      lifecycle: { onTimeout: 'pause', autoResume: true },
    })
    const d = (await detailOrGone(warren(), created.sandboxID))!
    expect(d.lifecycle).toMatchObject({ onTimeout: 'pause', autoResume: true })
  })
})
