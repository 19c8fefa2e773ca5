// cgroup limits of real sandboxes (privileged: runc, cgroups). A memory hog
// or a fork bomb is stopped inside its own sandbox; the sandbox's envd and
// the host keep working; the CPU quota follows cpuCount.
import { existsSync, readFileSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  assertNoLeftovers,
  ENVD_PORT,
  sandboxCgroup,
  useNodeFixture,
} from '../helpers/node-fixture.js'
import { underGvisor } from '../helpers/test-isolation.js'
import { hostCanSpawn, hostGet, sh, shResult } from './helpers.js'

// No warm network slots, so that the mid-test leftover check is exact.
const fixture = useNodeFixture({ config: { warmNetworkSlots: 0 } })

const readCg = (path: string) => readFileSync(path, 'utf8').trim()

describe('memory', () => {
  // Under gVisor an overrun ends the whole sandbox (no OOM killer of its own): tests/gvisor/limits.test.ts.
  it.skipIf(underGvisor)(
    'kills a hog inside its own sandbox and leaves envd answering',
    async () => {
      const f = fixture()
      const r = await f.create({ memoryMb: 256 })
      const sbx = f.sdk(r)
      const memDir = sandboxCgroup(f.prefix, r.sandboxId, 'memory')
      const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
      expect(Number(readCg(join(memDir, v2 ? 'memory.max' : 'memory.limit_in_bytes')))).toBe(
        256 * 2 ** 20,
      )

      const hog = await shResult(sbx, 'python3 -c "b = bytearray(1 << 30); print(len(b))"', 'root')
      expect(hog.exitCode).not.toBe(0)
      expect(hog.stdout).toBe('')
      expect(hog.error).toMatch(/killed/)
      // The kernel's OOM killer acted in this cgroup.
      const oom = readCg(join(memDir, v2 ? 'memory.events' : 'memory.oom_control'))
      expect(Number(oom.match(/oom_kill (\d+)/)?.[1])).toBeGreaterThanOrEqual(1)
      console.log(`memory hog: exit ${hog.exitCode} (${hog.error ?? 'no error text'})`)

      expect(await hostGet(`http://${r.sandboxIp}:${ENVD_PORT}/health`)).toBe(204)
      expect(await sh(sbx, 'echo still here')).toBe('still here\n')
      await f.node.kill(r.sandboxId)
    },
  )
})

describe('pids', () => {
  // Under gVisor the limit is 1024 + 256 for its own threads and an overrun ends
  // the whole sandbox: tests/gvisor/limits.test.ts.
  it.skipIf(underGvisor)(
    'stops a fork bomb at the pids limit; the host and the sandbox survive',
    async () => {
      const f = fixture()
      const r = await f.create({ memoryMb: 1024 })
      const sbx = f.sdk(r)
      const pidsDir = sandboxCgroup(f.prefix, r.sandboxId, 'pids')
      expect(readCg(join(pidsDir, 'pids.max'))).toBe('1024')

      // Forks sleeping children (their output detached, so the command ends
      // with its parent) until fork fails; prints the count and the errno.
      const bomb = `import errno, os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            fd = os.open('/dev/null', os.O_RDWR)
            for i in (0, 1, 2):
                os.dup2(fd, i)
            time.sleep(3600)
            os._exit(0)
        n += 1
except OSError as e:
    print(n, errno.errorcode[e.errno])
`
      await sbx.files.write('/tmp/bomb.py', bomb)
      const out = await sh(sbx, 'python3 /tmp/bomb.py', 'user')
      const [count, code] = out.trim().split(' ')
      console.log(`fork bomb: ${count} children before fork failed with ${code}`)
      expect(code).toBe('EAGAIN')
      // The limit counts tasks: tini, envd's threads, the shell and python itself.
      expect(Number(count)).toBeGreaterThan(900)
      expect(Number(count)).toBeLessThan(1024)
      expect(Number(readCg(join(pidsDir, 'pids.current')))).toBeGreaterThan(1000)

      expect(hostCanSpawn()).toBe(true)
      expect(await hostGet(`http://${r.sandboxIp}:${ENVD_PORT}/health`)).toBe(204)

      await f.node.kill(r.sandboxId)
      await f.node.teardownsSettled()
      await assertNoLeftovers(f.prefix, f.dataDir)
      expect(hostCanSpawn()).toBe(true)
    },
  )
})

describe('cpu', () => {
  it('sets the CFS quota from cpuCount', async () => {
    const f = fixture()
    const r = await f.create({ cpuCount: 1 })
    if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
      expect(readCg(join(sandboxCgroup(f.prefix, r.sandboxId, 'cpu'), 'cpu.max'))).toBe(
        '100000 100000',
      )
    } else {
      const cpuDir = sandboxCgroup(f.prefix, r.sandboxId, 'cpu')
      expect(readCg(join(cpuDir, 'cpu.cfs_quota_us'))).toBe('100000')
      expect(readCg(join(cpuDir, 'cpu.cfs_period_us'))).toBe('100000')
    }
    const two = await f.create({ cpuCount: 2 })
    const cpuTwo = sandboxCgroup(f.prefix, two.sandboxId, 'cpu')
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
    expect(readCg(join(cpuTwo, v2 ? 'cpu.max' : 'cpu.cfs_quota_us'))).toMatch(/^200000\b/)
    await Promise.all([f.node.kill(r.sandboxId), f.node.kill(two.sandboxId)])
  })
})

describe('disk', () => {
  it('stops a sandbox at its disk size and inode count; the host barely notices', async () => {
    const f = fixture()
    // 64 MB at the default 64 inodes per MB: 4096 inodes.
    const r = await f.create({ diskSizeMb: 64 })
    const sbx = f.sdk(r)
    const hostFree = () => statfsSync(f.dataDir).bavail * statfsSync(f.dataDir).bsize
    const before = hostFree()

    const big = await shResult(sbx, 'dd if=/dev/zero of=/home/user/big bs=1M count=256 2>&1')
    expect(big.exitCode).not.toBe(0)
    expect(big.stdout).toMatch(/No space left on device/)
    // wc, not stat: gVisor refuses coreutils' statx flag (docs/architecture.md, "gVisor").
    const written = Number(await sh(sbx, 'wc -c < /home/user/big'))
    expect(written).toBeGreaterThan(32 * 2 ** 20)
    expect(written).toBeLessThanOrEqual(64 * 2 ** 20)
    // The host gave at most the sandbox's 64 MB (and some metadata), not the 256 asked for.
    expect(before - hostFree()).toBeLessThan(80 * 2 ** 20)
    await sh(sbx, 'rm /home/user/big')

    const files = await shResult(
      sbx,
      'mkdir /home/user/many && cd /home/user/many && for i in $(seq 1 6000); do : > f$i || exit 7; done',
    )
    expect(files.exitCode).toBe(7)
    expect(files.stderr).toMatch(/No space left on device/)
    // A glob, not ls: gVisor refuses coreutils' statx flag (docs/architecture.md, "gVisor").
    const made = Number(await sh(sbx, 'cd /home/user/many && set -- f* && echo $#'))
    expect(made).toBeGreaterThan(3000)
    expect(made).toBeLessThan(4096)
    // Inside, df tells the truth about the sandbox's own disk.
    const df = await sh(sbx, "df -m / | tail -1 | awk '{print $2}'")
    expect(Number(df)).toBeGreaterThan(50)
    expect(Number(df)).toBeLessThanOrEqual(64)
    // Full, it still runs commands.
    expect(await sh(sbx, 'echo still here')).toBe('still here\n')
    await f.node.kill(r.sandboxId)
  })
})
