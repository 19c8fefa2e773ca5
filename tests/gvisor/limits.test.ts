// Memory and pids limits of gVisor sandboxes. runsc applies the cgroup
// limits to the whole sandbox (gVisor's kernel and gofer), so an overrun ends
// that sandbox as a whole instead of one process (docs/architecture.md,
// "gVisor"); these tests prove the limits are set where runsc puts the
// sandbox, that a hog and a fork bomb stop there, and that another gVisor
// sandbox and the node are untouched. Privileged: root, runsc, ip, nft.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { eventually } from '../helpers/api-client.js'
import { handle } from '../helpers/lifecycle.js'
import { sandboxCgroup } from '../helpers/node-fixture.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)

async function createGvisor(body: Record<string, unknown> = {}): Promise<Sandbox> {
  const created = await sandboxes.createRaw({
    timeout: 300,
    isolation: 'gvisor',
    metadata: { suite: 'gvisor-limits' },
    ...body,
  })
  return handle(warren(), created)
}

const cg = (id: string, controller: string, file: string) =>
  readFileSync(join(sandboxCgroup(warren().prefix, id, controller), file), 'utf8').trim()

/** Runs a command and reports how it ended: its stdout, or the error that ended it. */
async function outcome(sbx: Sandbox, cmd: string): Promise<string> {
  try {
    const r = await sbx.commands.run(cmd, { timeoutMs: 15_000 })
    return `exit 0: ${r.stdout.trim()}`
  } catch (err) {
    return `error: ${(err as Error).message}`
  }
}

async function alive(sbx: Sandbox): Promise<boolean> {
  try {
    return (await sbx.commands.run('echo alive', { timeoutMs: 10_000 })).stdout === 'alive\n'
  } catch {
    return false
  }
}

describe('gVisor sandbox limits', () => {
  it('holds a memory hog to its sandbox: the sandbox ends, a neighbour runs on', async () => {
    const neighbour = await createGvisor()
    const sbx = await createGvisor({ memoryMB: 256 })
    expect(Number(cg(sbx.sandboxId, 'memory', 'memory.limit_in_bytes'))).toBe(256 * 2 ** 20)
    // gVisor's own view of its memory is the limit.
    const total = await sbx.commands.run("awk '/MemTotal/ {print $2}' /proc/meminfo")
    expect(Number(total.stdout)).toBe(256 * 1024)

    const hog = await outcome(
      sbx,
      'python3 -c "b = [bytearray(16 * 2**20) for _ in range(64)]; print(len(b))"',
    )
    // 1 GiB never fits in 256 MiB: the hog does not get to print.
    expect(hog).not.toMatch(/^exit 0/)
    await eventually('the hog’s sandbox has ended', async () => !(await alive(sbx)), 20_000)
    expect(await alive(neighbour)).toBe(true)
  })

  it('stops a fork bomb at the host pids limit (its limit plus gVisor’s own threads)', async () => {
    const neighbour = await createGvisor()
    const sbx = await createGvisor()
    // base's pidsLimit (1024) + 256 for gVisor's kernel and gofer threads.
    expect(cg(sbx.sandboxId, 'pids', 'pids.max')).toBe('1280')
    const bomb = await outcome(
      sbx,
      `python3 -c "
import os, time
n = 0
try:
    while n < 5000:
        if os.fork() == 0:
            os.close(1); os.close(2); time.sleep(20); os._exit(0)
        n += 1
except OSError as e:
    print('stopped', n, e.errno)
"`,
    )
    // gVisor's kernel cannot make a thread past the limit and ends: the
    // sandbox, not one fork, is what stops (a connection to it hangs until
    // its deadline, as nothing in its namespace answers any more).
    expect(bomb).not.toMatch(/^exit 0/)
    await eventually('the bomb’s sandbox has ended', async () => !(await alive(sbx)), 20_000)
    expect(await alive(neighbour)).toBe(true)
  })
})
