// A flood of create/kill cycles: nothing is left behind and Warren's own
// memory and file descriptors do not grow. (scripts/soak.ts runs the long
// version, 1000 cycles and more, and prints the figures.)
import { expect, it } from 'vitest'
import { converged } from '../helpers/convergence.js'
import { createKillCycles } from '../helpers/cycles.js'
import { processStats } from '../helpers/process-stats.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren({ env: { WARREN_WARM_NETWORK_SLOTS: '0' } })

it('leaves nothing after 80 create/kill cycles, and Warren does not grow', async () => {
  const pid = warren().pid()!
  // Warm-up: pools, caches and JIT reach their working size first.
  await createKillCycles(warren(), 20)
  const before = processStats(pid)
  await createKillCycles(warren(), 80)
  expect(await converged(warren())).toEqual([])
  const after = processStats(pid)
  console.log(
    `150 cycles: rss ${before.rssMb} -> ${after.rssMb} MB, fds ${before.fds} -> ${after.fds}`,
  )
  expect(after.fds - before.fds).toBeLessThanOrEqual(8)
  expect(after.rssMb - before.rssMb).toBeLessThan(48)
})
