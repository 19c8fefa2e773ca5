// The long version of tests/faults/cycles.test.ts, run by hand:
//   npx tsx scripts/soak.ts [--cycles 1000] [--parallel 4]
// Starts its own `warren up` (its own ports, prefix and data dir), runs
// create/kill cycles in rounds, prints Warren's memory and descriptors after
// each round, then proves nothing is left and cleans up. Exits 1 on
// leftovers, failures or growth.
import { parseArgs } from 'node:util'
import { converged } from '../tests/helpers/convergence.js'
import { createKillCycles } from '../tests/helpers/cycles.js'
import { processStats } from '../tests/helpers/process-stats.js'
import { startWarren } from '../tests/helpers/warren-fixture.js'

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '1000' },
    parallel: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '10' },
  },
})
const cycles = Number(values.cycles)
const parallel = Number(values.parallel)
const rounds = Math.max(1, Number(values.rounds))

const w = await startWarren({ env: { WARREN_WARM_NETWORK_SLOTS: '0' } })
let ok = false
try {
  const pid = w.pid()!
  await createKillCycles(w, 20, parallel) // warm-up
  const first = processStats(pid)
  console.log(`warm: rss ${first.rssMb} MB, fds ${first.fds}`)
  const started = Date.now()
  let done = 0
  for (let r = 1; r <= rounds; r++) {
    const n = Math.round((cycles * r) / rounds) - done
    await createKillCycles(w, n, parallel)
    done += n
    const s = processStats(pid)
    const rate = (done / ((Date.now() - started) / 1000)).toFixed(1)
    console.log(`${done} cycles (${rate}/s): rss ${s.rssMb} MB, fds ${s.fds}`)
  }
  const left = await converged(w)
  const last = processStats(pid)
  const grew = { rssMb: last.rssMb - first.rssMb, fds: last.fds - first.fds }
  console.log(
    `done: ${cycles} cycles in ${((Date.now() - started) / 1000).toFixed(0)} s; leftovers: ${left.length}; growth: rss ${grew.rssMb.toFixed(1)} MB, fds ${grew.fds}`,
  )
  ok = left.length === 0 && grew.fds <= 8 && grew.rssMb < 64
} finally {
  await w.teardown(!ok)
}
process.exit(ok ? 0 : 1)
