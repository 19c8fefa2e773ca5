// Warren's data disk filling up (something else fills it): creates fail with
// a clear error and change nothing, running sandboxes keep working, and once
// space is back creates work again. The data directory is a small
// filesystem of the test's own.
import { execFileSync } from 'node:child_process'
import { rmSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { api } from '../helpers/api-client.js'
import { converged } from '../helpers/convergence.js'
import { createRaw, handle } from '../helpers/lifecycle.js'
import { useWarren } from '../helpers/warren-fixture.js'

const RESERVE_MB = 300

const warren = useWarren({
  env: { WARREN_WARM_NETWORK_SLOTS: '0', WARREN_DISK_RESERVE_MB: String(RESERVE_MB) },
  prepare: async ({ dataDir }) => {
    const image = `${dataDir}.img`
    execFileSync('truncate', ['-s', '1500M', image])
    execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', image])
    execFileSync('mount', ['-o', 'loop', image, dataDir])
    return async () => {
      execFileSync('umount', [dataDir])
      rmSync(image, { force: true })
      rmSync(dataDir, { recursive: true, force: true })
    }
  },
})

const filler = () => join(warren().dataDir, 'filler')
const freeMb = () => {
  const s = statfsSync(warren().dataDir)
  return Math.floor((s.bavail * s.bsize) / 2 ** 20)
}
/** Takes the data disk's space until `leaveMb` is left. */
function fill(leaveMb: number): void {
  rmSync(filler(), { force: true })
  const take = freeMb() - leaveMb
  if (take > 0) execFileSync('fallocate', ['-l', `${take}M`, filler()])
}

afterAll(() => rmSync(filler(), { force: true }))

describe('the data disk filling up', () => {
  it('refuses creates clearly, keeps running sandboxes working, and recovers', async () => {
    const created = await createRaw(warren(), { timeout: 300, diskSizeMB: 128 })
    const sbx = handle(warren(), created)
    await sbx.files.write('/home/user/before.txt', 'before\n')
    const count = async () =>
      ((await api(warren(), 'GET', '/v2/sandboxes')).body as unknown[]).length

    // Below the reserve: the node refuses, naming why; nothing is left of the attempt.
    fill(RESERVE_MB / 2)
    const refused = await api(warren(), 'POST', '/v2/sandboxes', { json: { templateID: 'base' } })
    expect(refused.status, refused.text).toBe(503)
    expect(refused.body).toMatchObject({
      code: 503,
      message: expect.stringMatching(/data disk is full/),
    })
    expect(await count()).toBe(1)
    // The running sandbox works, and writes (into space it already had, or the little left).
    expect((await sbx.commands.run('echo working')).stdout).toBe('working\n')
    await sbx.files.write('/home/user/during.txt', 'x'.repeat(1 << 20))
    expect(await sbx.files.read('/home/user/before.txt')).toBe('before\n')

    // Completely full: the store itself cannot write; still a clear answer.
    fill(0)
    const full = await api(warren(), 'POST', '/v2/sandboxes', { json: { templateID: 'base' } })
    expect(full.status, full.text).toBe(503)
    expect(full.body).toMatchObject({ code: 503, message: expect.stringMatching(/disk is full/) })
    expect((await api(warren(), 'GET', '/health')).status).toBe(200)
    expect((await sbx.commands.run('cat /home/user/before.txt')).stdout).toBe('before\n')

    // Space back: creates work again, and API and host agree.
    rmSync(filler(), { force: true })
    const again = await createRaw(warren(), { timeout: 300, diskSizeMB: 128 })
    expect((await handle(warren(), again).commands.run('echo new')).stdout).toBe('new\n')
    const live = await converged(warren())
    expect(live.map((l) => l.id).sort()).toEqual([created.sandboxID, again.sandboxID].sort())
  })
})
