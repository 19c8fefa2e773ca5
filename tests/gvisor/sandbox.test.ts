// A sandbox under gVisor (runsc), driven by the official SDK through
// `warren up`: create with Warren's `isolation` field, commands, files, a
// background process, hot pause and resume that keep it, the disk limit,
// kill; and proof that it really runs in gVisor's kernel, not the host's.
// Privileged: needs root, runsc, runc, ip and nft.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import type { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { api, eventually, expectApiError, sleep } from '../helpers/api-client.js'
import { connect, handle, layerFile, pause } from '../helpers/lifecycle.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)

async function createGvisor(body: Record<string, unknown> = {}): Promise<Sandbox> {
  const created = await sandboxes.createRaw({
    timeout: 300,
    isolation: 'gvisor',
    metadata: { suite: 'gvisor' },
    ...body,
  })
  return handle(warren(), created)
}

/** The container as the node's runsc root reports it (undefined when runsc does not know it). */
function runscState(id: string): { status: string } | undefined {
  try {
    const out = execFileSync(
      'runsc',
      ['--root', join(warren().dataDir, 'runsc'), 'state', `${warren().prefix}-${id}`],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    )
    return JSON.parse(out) as { status: string }
  } catch {
    return undefined
  }
}

describe('a gVisor sandbox through the SDK', () => {
  it('runs commands in gVisor’s kernel, reads and writes files, and says so in GET', async () => {
    const sbx = await createGvisor()
    expect(runscState(sbx.sandboxId)?.status).toBe('running')
    const got = await api(warren(), 'GET', `/sandboxes/${sbx.sandboxId}`)
    expect(got.status).toBe(200)
    expect((got.body as { isolation: string }).isolation).toBe('gvisor')

    const r = await sbx.commands.run('echo hello; hostname; id -un; dmesg 2>/dev/null | head -1')
    expect(r.stdout.split('\n').slice(0, 3)).toEqual(['hello', sbx.sandboxId, 'user'])
    // gVisor's kernel introduces itself in its log; the host's does not say that.
    expect(r.stdout).toMatch(/gVisor/)

    await sbx.files.write('/home/user/a.txt', 'written through envd\n')
    expect(await sbx.files.read('/home/user/a.txt')).toBe('written through envd\n')
    const cat = await sbx.commands.run('cat /home/user/a.txt; echo made > /home/user/b.txt')
    expect(cat.stdout).toBe('written through envd\n')
    expect(await sbx.files.read('/home/user/b.txt')).toBe('made\n')
    const entries = (await sbx.files.list('/home/user')).map((e) => e.name)
    expect(entries).toEqual(expect.arrayContaining(['a.txt', 'b.txt']))
    // gVisor (2022) holds every process to no_new_privs: set-uid programs
    // (sudo) gain nothing there; root is reached through envd's user instead.
    const su = await sbx.commands.run('sudo -n id -u 2>&1; true')
    expect(su.stdout).toMatch(/no new privileges/)
    expect((await sbx.commands.run('id -u', { user: 'root' })).stdout).toBe('0\n')
    // The sandbox's own memory limit, as gVisor's /proc shows it.
    const mem = await sbx.commands.run("awk '/MemTotal/ {print $2}' /proc/meminfo")
    expect(Number(mem.stdout)).toBeLessThanOrEqual(512 * 1024)

    expect(await sbx.kill()).toBe(true)
    expect(runscState(sbx.sandboxId)).toBeUndefined()
  })

  it('keeps a background process across a hot pause and resume', async () => {
    const sbx = await createGvisor()
    await sbx.commands.run(
      'i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new && mv /tmp/count.new /tmp/count; sleep 0.1; done',
      { background: true },
    )
    // 0 until the first value is written.
    const count = async () => Number((await sbx.files.read('/tmp/count').catch(() => '0')).trim())
    await eventually('the counter counts', async () => (await count()) >= 3, 10_000)

    expect(await sbx.pause()).toBe(true)
    expect(runscState(sbx.sandboxId)?.status).toBe('paused')
    // Its files are on its disk (read from the host while it is paused), and
    // nothing moves while it is paused (the wait is what is tested).
    const frozenAt = Number(layerFile(warren(), sbx.sandboxId, 'tmp/count'))
    expect(frozenAt).toBeGreaterThanOrEqual(3)
    await sleep(1500)
    expect(Number(layerFile(warren(), sbx.sandboxId, 'tmp/count'))).toBe(frozenAt)

    const resumed = await connect(warren(), sbx.sandboxId, { timeout: 120 })
    expect(resumed.status).toBe(201)
    expect(resumed.body.resumedFrom).toBe('memory')
    expect(runscState(sbx.sandboxId)?.status).toBe('running')
    // The same process continues (a restart would count from 1).
    await eventually('the counter moves again', async () => (await count()) > frozenAt, 5000)
    expect(await count()).toBeLessThan(frozenAt + 40)
  })

  it('pauses to files with what a process wrote and kept open, and boots under gVisor again', async () => {
    const sbx = await createGvisor()
    // Written and flushed into the kernel (gVisor's), never closed nor synced.
    await sbx.commands.run(
      "python3 -c \"import time; f = open('/home/user/open.txt', 'w'); f.write('kept\\n'); f.flush(); time.sleep(3600)\"",
      { background: true },
    )
    await eventually(
      'the file exists',
      async () => (await sbx.files.read('/home/user/open.txt').catch(() => '')) === 'kept\n',
      10_000,
    )
    expect(await pause(warren(), sbx.sandboxId, false)).toBe(204)
    expect(runscState(sbx.sandboxId)).toBeUndefined()
    expect(layerFile(warren(), sbx.sandboxId, 'home/user/open.txt')).toBe('kept\n')

    const resumed = await connect(warren(), sbx.sandboxId, { timeout: 120 })
    expect(resumed.body.resumedFrom).toBe('files')
    expect(runscState(sbx.sandboxId)?.status).toBe('running')
    expect(await sbx.files.read('/home/user/open.txt')).toBe('kept\n')
    const dmesg = await sbx.commands.run('dmesg | head -1')
    expect(dmesg.stdout).toMatch(/gVisor/)
  })

  it('stops writes at its disk size with ENOSPC', async () => {
    const sbx = await createGvisor({ diskSizeMB: 128 })
    const r = await sbx.commands.run(
      'dd if=/dev/zero of=/home/user/big bs=1M count=256 2>&1; echo "exit $?"',
      { timeoutMs: 60_000 },
    )
    expect(r.stdout).toMatch(/No space left on device/)
    expect(r.stdout).toMatch(/exit 1/)
    // The sandbox goes on: a small write after removing the file works.
    const again = await sbx.commands.run(
      'rm /home/user/big && echo ok > /home/user/small && cat /home/user/small',
    )
    expect(again.stdout).toBe('ok\n')
  })

  it('refuses an unknown isolation with 400 and makes nothing', async () => {
    const res = await api(warren(), 'POST', '/v2/sandboxes', {
      json: { templateID: 'base', isolation: 'kata' },
    })
    expectApiError(res, 400, /isolation/)
  })
})
