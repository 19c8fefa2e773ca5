// Twenty sandboxes created at once on a small machine all come up, each
// answers a command as itself, and all of them are removed without a trace.
import { expect, it } from 'vitest'
import { assertNoLeftovers, useNodeFixture } from '../helpers/node-fixture.js'
import { sh } from './helpers.js'

const COUNT = 20
const fixture = useNodeFixture()

it(`creates ${COUNT} sandboxes concurrently and removes them all`, async () => {
  const f = fixture()
  const started = performance.now()
  const results = await Promise.allSettled(
    Array.from({ length: COUNT }, () => f.create({ memoryMb: 256 })),
  )
  const createdMs = performance.now() - started
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []))
  expect(failures).toEqual([])
  const records = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  expect(new Set(records.map((r) => r.sandboxIp)).size).toBe(COUNT)
  expect(f.node.list()).toHaveLength(COUNT)

  // Each answers, as itself (its hostname is its id), at its own address.
  const answers = await Promise.all(
    records.map((r) => sh(f.sdk(r), 'echo "$(hostname) $(hostname -I)"')),
  )
  expect(answers.map((a) => a.trim())).toEqual(records.map((r) => `${r.sandboxId} ${r.sandboxIp}`))

  const killStarted = performance.now()
  await Promise.all(records.map((r) => f.node.kill(r.sandboxId)))
  console.log(
    `${COUNT} concurrent creates took ${createdMs.toFixed(0)} ms; kills ${(performance.now() - killStarted).toFixed(0)} ms`,
  )
  expect(f.node.list()).toEqual([])
  await f.node.stop()
  await assertNoLeftovers(f.prefix, f.dataDir)
})
