// Prometheus metrics per sandbox and per node, read by a real node from what
// the kernel counts: the sandbox's cgroup (CPU time, memory), its disk image
// and its veth (bytes each way). A sandbox that burns CPU, writes a file and
// sends it out through the proxy shows each figure grow; its series go when
// it goes. The API's lifecycle durations count the operations.
import { describe, expect, it } from 'vitest'
import { sleep } from '../helpers/api-client.js'
import { metrics as apiMetrics, createRaw } from '../helpers/lifecycle.js'
import { fixtureSecret } from '../helpers/orchestrator-client.js'
import { proxyRequest, sandboxHost } from '../helpers/proxy-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)
const MB = 2 ** 20

/** The node's (or the edge's) /metrics: `name{labels}` → value. */
async function scrape(headers: Record<string, string> = {}, port = warren().ports.rpc) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
    headers: { 'x-warren-cluster-secret': fixtureSecret(warren()), ...headers },
  })
  expect(res.status).toBe(200)
  const out = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

/** One sandbox's series: metric name (without `warren_sandbox_`) → value. */
function ofSandbox(all: Map<string, number>, id: string): Record<string, number> {
  const mine: Record<string, number> = {}
  for (const [k, v] of all) {
    const m = /^warren_sandbox_(\w+)\{sandbox_id="([^"]+)",template_id="[^"]+"\}$/.exec(k)
    if (m && m[2] === id) mine[m[1]!] = v
  }
  return mine
}

describe('per-sandbox metrics on the node', () => {
  it("follow the sandbox's CPU, memory, disk and network, and go with it", async () => {
    const sbx = await sandboxes.create({ timeoutMs: 120_000 })
    const id = sbx.sandboxId
    const before = ofSandbox(await scrape(), id)
    expect(Object.keys(before).sort()).toEqual([
      'cpu_seconds_total',
      'disk_size_bytes',
      'disk_used_bytes',
      'memory_bytes',
      'memory_limit_bytes',
      'network_receive_bytes_total',
      'network_transmit_bytes_total',
    ])
    expect(before.memory_bytes).toBeGreaterThan(0)
    expect(before.memory_limit_bytes).toBeGreaterThan(before.memory_bytes!)
    expect(before.disk_size_bytes).toBeGreaterThan(0)

    // CPU for a while, then 24 MB of random bytes on its disk.
    const run = await sbx.commands.run(
      'timeout 1 sh -c "while :; do :; done"; head -c 25165824 /dev/urandom > /home/user/blob && sync',
      { timeoutMs: 60_000 },
    )
    expect(run.exitCode).toBe(0)
    // The file goes out through the edge proxy and the sandbox's veth.
    const blob = await sbx.files.read('/home/user/blob', { format: 'bytes' })
    expect(blob.length).toBe(24 * MB)

    const after = ofSandbox(await scrape(), id)
    expect(after.cpu_seconds_total! - before.cpu_seconds_total!).toBeGreaterThan(0.5)
    expect(after.disk_used_bytes! - before.disk_used_bytes!).toBeGreaterThanOrEqual(20 * MB)
    expect(
      after.network_transmit_bytes_total! - before.network_transmit_bytes_total!,
    ).toBeGreaterThanOrEqual(24 * MB)
    expect(after.network_receive_bytes_total).toBeGreaterThan(before.network_receive_bytes_total!)
    console.log(
      `sandbox ${id}: cpu +${(after.cpu_seconds_total! - before.cpu_seconds_total!).toFixed(2)} s, ` +
        `disk +${((after.disk_used_bytes! - before.disk_used_bytes!) / MB).toFixed(1)} MB, ` +
        `sent +${((after.network_transmit_bytes_total! - before.network_transmit_bytes_total!) / MB).toFixed(1)} MB, ` +
        `memory ${(after.memory_bytes! / MB).toFixed(1)} of ${after.memory_limit_bytes! / MB} MB`,
    ) // biome-ignore format: one line

    const node = await scrape()
    expect(node.get('warren_node_sandboxes{state="running"}')).toBeGreaterThanOrEqual(1)
    expect(node.get('warren_node_memory_bytes')).toBeGreaterThan(0)
    expect(node.get('warren_node_memory_allocated_bytes')).toBeGreaterThanOrEqual(
      after.memory_limit_bytes!,
    )
    expect(node.get('warren_node_sandbox_series_dropped')).toBe(0)

    await sbx.kill()
    const gone = ofSandbox(await scrape(), id)
    expect(gone).toEqual({})

    const lifecycle = await apiMetrics(warren())
    expect(
      lifecycle.get('warren_lifecycle_duration_seconds_count{op="create",outcome="ok"}'),
    ).toBeGreaterThanOrEqual(1)
    expect(
      lifecycle.get('warren_lifecycle_duration_seconds_count{op="kill",outcome="ok"}'),
    ).toBeGreaterThanOrEqual(1)
  })

  it("are the cluster's: no secret, no metrics", async () => {
    const res = await fetch(`http://127.0.0.1:${warren().ports.rpc}/metrics`)
    expect(res.status).toBe(401)
    expect(await res.json()).toMatchObject({ code: 401 })
  })

  it('at the edge: requests by status, and keepalive reports per sandbox that go with it', async () => {
    const edge = () => scrape({}, warren().ports.proxy)
    const made = await createRaw(warren(), {
      timeout: 120,
      lifecycle: { keepalive: { traffic: { enabled: true } } },
      metadata: { suite: 'sandbox-metrics' },
    })
    const id = sandboxes.add(made.sandboxID)
    const before = await edge()
    const ok = await proxyRequest(warren(), {
      host: sandboxHost(warren(), id, 49983),
      path: '/health',
      headers: { 'x-access-token': made.envdAccessToken ?? '' },
    })
    const unknown = await proxyRequest(warren(), {
      host: sandboxHost(warren(), 'zzzzzzzzzzzzzzzzzzz0', 49983),
      path: '/health',
    })
    expect(unknown.status).toBe(502)
    const after = await edge()
    const grew = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0)
    expect(grew(`warren_proxy_requests_total{status="${ok.status}"}`)).toBeGreaterThanOrEqual(1)
    expect(grew('warren_proxy_requests_total{status="502"}')).toBeGreaterThanOrEqual(1)
    expect(
      grew('warren_proxy_request_duration_seconds_count{status="502"}'),
    ).toBeGreaterThanOrEqual(1)
    expect(
      after.get(`warren_proxy_keepalive_reports_total{sandbox_id="${id}"}`),
    ).toBeGreaterThanOrEqual(1)

    expect((await fetch(`http://127.0.0.1:${warren().ports.proxy}/metrics`)).status).toBe(401)

    await fetch(`${warren().apiUrl}/sandboxes/${id}`, {
      method: 'DELETE',
      headers: { 'x-api-key': warren().apiKey },
    })
    let series: number | undefined = 1
    for (let i = 0; i < 50 && series !== undefined; i++) {
      await sleep(100)
      series = (await edge()).get(`warren_proxy_keepalive_reports_total{sandbox_id="${id}"}`)
    }
    expect(series).toBeUndefined()
  })
})
