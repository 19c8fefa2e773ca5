// Cold resume on another node vs on the same node, in one cluster and one run.
// A cluster of separate processes (private PostgreSQL, one API, an edge
// proxy, two nodes over TLS): each round creates a sandbox, writes --mb MB
// of random data into it, pauses it to its files, and resumes it through the
// API (connect) up to a first command — on its own node, or, with its node
// draining, on the other one, which pulls the snapshot from the origin over
// its RPC port (or with --store from a shared snapshot store on this
// machine's disk). Rounds of the two kinds alternate; the ratio is cross /
// same of the median. Both nodes share this machine's cores and disk.
// Privileged; traffic only to loopback and the sandboxes' namespaces.
//   npm run bench -- moves [--rounds 5] [--mb 8] [--store] [--json]
import { mkdtempSync, rmSync } from 'node:fs'
import { Sandbox } from 'e2b'
import { api } from '../tests/helpers/api-client.js'
import { type ClusterFixture, startCluster } from '../tests/helpers/cluster-fixture.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, ms, pct } from './lib/stats.js'

const values = benchArgs({
  rounds: { type: 'string', default: '5' },
  mb: { type: 'string', default: '8' },
  store: { type: 'boolean', default: false },
})
const ROUNDS = Number(values.rounds)
const MB = Number(values.mb)

interface Sample {
  ms: number
  from: string | undefined
  moved: boolean
}

async function round(cluster: ClusterFixture, cross: boolean): Promise<Sample> {
  const created = await api(cluster, 'POST', '/v2/sandboxes', {
    json: { templateID: 'base', timeout: 300, memoryMB: 256 },
  })
  if (created.status !== 201) throw new Error(`create: ${created.text}`)
  const id = (created.body as { sandboxID: string }).sandboxID
  const origin = await cluster.nodeOf(id)
  try {
    const sbx = await Sandbox.connect(id, cluster.sdk)
    await sbx.commands.run(`head -c ${MB}M /dev/urandom > /home/user/payload`)
    const paused = await api(cluster, 'POST', `/sandboxes/${id}/pause`, { json: { memory: false } })
    if (paused.status !== 204) throw new Error(`pause: ${paused.text}`)
    if (cross) await setSchedulable(cluster, origin!, 'draining')
    const t0 = performance.now()
    const res = await api(cluster, 'POST', `/v2/sandboxes/${id}/connect`, {
      json: { timeout: 300 },
    })
    if (res.status !== 201) throw new Error(`resume: ${res.text}`)
    const again = await Sandbox.connect(id, cluster.sdk)
    await again.commands.run('test -s /home/user/payload')
    const took = performance.now() - t0
    if (cross) await setSchedulable(cluster, origin!, 'active')
    return {
      ms: took,
      from: (res.body as { resumedFrom?: string }).resumedFrom,
      moved: (await cluster.nodeOf(id)) !== origin,
    }
  } finally {
    await api(cluster, 'DELETE', `/sandboxes/${id}`)
  }
}

function setSchedulable(cluster: ClusterFixture, nodeId: string, schedulable: string) {
  return cluster.nodeService.setSchedulable({ nodeId, schedulable })
}

await runBenchmark('moves', values.json, async (): Promise<Figures> => {
  const store = values.store ? mkdtempSync('/tmp/warren-bench-store-') : undefined
  process.stderr.write('starting a cluster with 2 nodes…\n')
  const cluster = await startCluster({
    nodes: 2,
    postgres: true,
    ...(store ? { nodeEnv: () => ({ WARREN_SNAPSHOT_STORE: store }) } : {}),
  })
  const same: Sample[] = []
  const cross: Sample[] = []
  let ok = false
  try {
    // Warm-up: templates in the page cache, connection pools open.
    await round(cluster, false)
    await round(cluster, true)
    for (let r = 0; r < ROUNDS; r++) {
      same.push(await round(cluster, false))
      cross.push(await round(cluster, true))
    }
    ok = true
  } finally {
    await cluster.teardown(!ok)
    if (store) rmSync(store, { recursive: true, force: true })
  }
  if (
    same.some((s) => s.moved || s.from !== 'files') ||
    cross.some((s) => !s.moved || s.from !== 'files')
  )
    throw new Error('a round did not resume as it should (same node / moved, from files)')
  const sameMs = same.map((s) => s.ms)
  const crossMs = cross.map((s) => s.ms)
  console.log(
    `\ncold resume (connect + first command) of a sandbox holding ${MB} MB of its own, ${ROUNDS} rounds each; snapshot ${store ? 'from a shared store' : 'pulled from the origin node'}`,
  )
  console.log('| resume | p50 | p95 |')
  console.log('|---|---|---|')
  console.log(`| same node (files) | ${ms(median(sameMs))} | ${ms(pct(sameMs, 95))} |`)
  console.log(`| another node (files, moved) | ${ms(median(crossMs))} | ${ms(pct(crossMs, 95))} |`)
  const ratio = median(crossMs) / median(sameMs)
  console.log(`\ncross-node / same-node cold resume (median): ${ratio.toFixed(2)}×`)
  return {
    sameNodeColdResumeMs: median(sameMs),
    crossNodeColdResumeMs: median(crossMs),
    crossNodeOverSameNode: ratio,
  }
})
