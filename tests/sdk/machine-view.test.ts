// Inside a sandbox, the machine is the sandbox's own, as a VM would be:
// memory and disk of its size (create's Warren extensions memoryMB and
// diskSizeMB), an uptime that starts at its boot (again after a cold
// resume), and what its disk holds reported by GET /sandboxes/{id}.
import { afterAll, describe, expect, it } from 'vitest'
import { api, sleep } from '../helpers/api-client.js'
import { connect, createRaw, handle, pause } from '../helpers/lifecycle.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const made: string[] = []
afterAll(async () => {
  for (const id of made) await api(warren(), 'DELETE', `/sandboxes/${id}`)
})

async function create(body: Record<string, unknown> = {}) {
  const created = await createRaw(warren(), { timeout: 120, ...body })
  made.push(created.sandboxID)
  return { id: created.sandboxID, sbx: handle(warren(), created) }
}

const uptime = async (sbx: ReturnType<typeof handle>) =>
  Number((await sbx.commands.run('cut -d" " -f1 /proc/uptime')).stdout)

describe("a sandbox's own machine", () => {
  it('free and df show its memoryMB and diskSizeMB; GET reports what its disk holds', async () => {
    const { id, sbx } = await create({ memoryMB: 512, diskSizeMB: 256 })
    const free = await sbx.commands.run("free -m | awk '/^Mem:/ {print $2}'")
    expect(Number(free.stdout)).toBe(512)
    const df = Number((await sbx.commands.run("df -m / | awk 'NR==2 {print $2}'")).stdout)
    expect(df).toBeGreaterThan(200)
    expect(df).toBeLessThanOrEqual(256)

    const before = (await api(warren(), 'GET', `/sandboxes/${id}`)).body as Record<string, number>
    expect(before).toMatchObject({ memoryMB: 512, diskSizeMB: 256 })
    await sbx.commands.run('head -c 50000000 /dev/urandom > /home/user/blob && sync')
    const after = (await api(warren(), 'GET', `/sandboxes/${id}`)).body as Record<string, number>
    expect(after.diskUsedMB).toBeGreaterThanOrEqual((before.diskUsedMB ?? 0) + 47)
    expect(after.diskUsedMB).toBeLessThan(256)
  })

  it('refuses resources out of range, creating nothing', async () => {
    for (const body of [{ memoryMB: 16 }, { diskSizeMB: 1 }, { cpuCount: 0 }, { cpuCount: 1.5 }]) {
      const res = await api(warren(), 'POST', '/v2/sandboxes', {
        json: { templateID: 'base', ...body },
      })
      expect(res.status, JSON.stringify(body)).toBe(400)
      expect(res.body).toMatchObject({ code: 400 })
    }
  })

  it('a cold resume is a reboot: new processes, uptime from zero; a hot one keeps both', async () => {
    const { id, sbx } = await create()
    await sbx.commands.run('sleep 3600', { background: true })
    await sleep(2500) // the uptime to compare against
    const up = await uptime(sbx)
    expect(up).toBeGreaterThan(2)

    expect(await pause(warren(), id)).toBe(204)
    expect((await connect(warren(), id, { timeout: 120 })).body.resumedFrom).toBe('memory')
    expect(await uptime(sbx)).toBeGreaterThanOrEqual(up)
    expect((await sbx.commands.run('pgrep -x sleep || true')).stdout.trim()).not.toBe('')

    expect(await pause(warren(), id, false)).toBe(204)
    expect((await connect(warren(), id, { timeout: 120 })).body.resumedFrom).toBe('files')
    expect(await uptime(sbx)).toBeLessThan(up)
    expect((await sbx.commands.run('pgrep -x sleep || true')).stdout.trim()).toBe('')
  })
})
