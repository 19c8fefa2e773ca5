// Creates/s of a multi-process cluster with 2 nodes vs the same cluster with 1.
// `warren dev-cluster` (private PostgreSQL, 2 API replicas, N nodes, an edge
// proxy, each a process) started twice in one run, 1 node then 2: each round
// creates --concurrent sandboxes through the SDK at once, spread over the
// replicas, and runs a first command in each; creates/s and the p95 of one
// create, and the ratio 2 nodes / 1 node. On one machine both nodes share its
// cores, so the ratio shows what the control plane adds, not what a second
// machine would give.
// Privileged; traffic only to loopback and the sandboxes' namespaces.
//   npm run bench -- cluster [--concurrent 20] [--rounds 3] [--json]
import { Sandbox } from 'e2b'
import { type RunningDevCluster, startDevCluster } from '../tests/helpers/dev-cluster.js'
import { benchArgs, type Figures, runBenchmark } from './lib/report.js'
import { median, ms, pct } from './lib/stats.js'

const values = benchArgs({
  concurrent: { type: 'string', default: '20' },
  rounds: { type: 'string', default: '3' },
})
const CONCURRENT = Number(values.concurrent)
const ROUNDS = Number(values.rounds)

interface Round {
  perS: number
  createMs: number[]
  nodes: Set<string>
}

async function round(cluster: RunningDevCluster): Promise<Round> {
  const apis = cluster.processes.filter((p) => p.name.startsWith('api-')).map((p) => p.url)
  const createMs: number[] = []
  const started = performance.now()
  const settled = await Promise.allSettled(
    Array.from({ length: CONCURRENT }, async (_, i) => {
      const t0 = performance.now()
      const sbx = await Sandbox.create({
        apiUrl: apis[i % apis.length] as string,
        sandboxUrl: cluster.sdk.sandboxUrl,
        apiKey: cluster.sdk.apiKey,
        timeoutMs: 120_000,
      })
      await sbx.commands.run('true')
      createMs.push(performance.now() - t0)
      return sbx
    }),
  )
  const sandboxes = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  const failed = settled.find((r) => r.status === 'rejected')
  if (failed) {
    await Promise.all(sandboxes.map((s) => s.kill()))
    throw failed.reason
  }
  const perS = CONCURRENT / ((performance.now() - started) / 1000)
  const nodes = new Set<string>()
  for (const s of sandboxes) {
    const res = await fetch(`${cluster.sdk.apiUrl}/sandboxes/${s.sandboxId}`, {
      headers: { 'X-API-Key': cluster.sdk.apiKey },
    })
    nodes.add(((await res.json()) as { clientID: string }).clientID)
  }
  await Promise.all(sandboxes.map((s) => s.kill()))
  return { perS, createMs, nodes }
}

async function measure(nodes: number) {
  process.stderr.write(`starting a dev cluster with ${nodes} node(s)…\n`)
  const cluster = await startDevCluster({ apis: 2, nodes })
  try {
    // One warm-up round: templates in the page cache, connection pools open.
    await round(cluster)
    const rounds: Round[] = []
    for (let r = 0; r < ROUNDS; r++) rounds.push(await round(cluster))
    return {
      perS: median(rounds.map((r) => r.perS)),
      createMs: rounds.flatMap((r) => r.createMs),
      nodesUsed: Math.max(...rounds.map((r) => r.nodes.size)),
    }
  } finally {
    await cluster.teardown()
  }
}

await runBenchmark('cluster', values.json, async (): Promise<Figures> => {
  const one = await measure(1)
  const two = await measure(2)
  console.log(`\n${CONCURRENT} concurrent SDK creates + first command, ${ROUNDS} rounds each`)
  console.log('| cluster | creates/s (median round) | create p50 | create p95 | nodes used |')
  console.log('|---|---|---|---|---|')
  for (const [name, m] of [
    ['2 API replicas, 1 node', one],
    ['2 API replicas, 2 nodes', two],
  ] as const) {
    console.log(
      `| ${name} | ${m.perS.toFixed(1)} | ${ms(median(m.createMs))} | ${ms(pct(m.createMs, 95))} | ${m.nodesUsed} |`,
    )
  }
  const ratio = two.perS / one.perS
  console.log(`\ncreates/s, 2 nodes / 1 node: ${ratio.toFixed(2)}×`)
  return {
    oneNodeCreatesPerS: one.perS,
    twoNodesCreatesPerS: two.perS,
    twoNodesOverOneNode: ratio,
    twoNodesCreateP95Ms: pct(two.createMs, 95),
    oneNodeCreateP95Ms: pct(one.createMs, 95),
  }
})
