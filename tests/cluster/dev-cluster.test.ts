// `warren dev-cluster`: PostgreSQL, 2 API replicas, 2 nodes and an edge proxy
// as separate processes on this machine. The official SDK, unchanged, drives
// sandboxes through it across both nodes and both replicas; Ctrl-C kills its
// sandboxes and leaves nothing running or on the host.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Sandbox } from 'e2b'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually } from '../helpers/api-client.js'
import { internalRequest } from '../helpers/cluster-fixture.js'
import { type RunningDevCluster, startDevCluster } from '../helpers/dev-cluster.js'
import { hostLeftovers } from '../helpers/node-fixture.js'

let cluster: RunningDevCluster

beforeAll(async () => {
  // Nodes are judged quickly here: unhealthy after 2 s of silence, lost after 6.
  cluster = await startDevCluster({
    apis: 2,
    nodes: 2,
    env: { WARREN_NODE_UNHEALTHY_AFTER: '2', WARREN_NODE_LOST_AFTER: '6' },
  })
})

afterAll(async () => {
  await cluster?.teardown()
})

const opts = () => ({
  apiUrl: cluster.sdk.apiUrl,
  sandboxUrl: cluster.sdk.sandboxUrl,
  apiKey: cluster.sdk.apiKey,
})

async function query<T>(sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: cluster.databaseUrl })
  await c.connect()
  try {
    return (await c.query(sql)).rows as T[]
  } finally {
    await c.end()
  }
}

async function nodeOf(apiUrl: string, id: string): Promise<string> {
  const res = await fetch(`${apiUrl}/sandboxes/${id}`, {
    headers: { 'X-API-Key': cluster.sdk.apiKey },
  })
  expect(res.status).toBe(200)
  return ((await res.json()) as { clientID: string }).clientID
}

describe('warren dev-cluster', () => {
  it('prints the SDK variables and every process it started', () => {
    expect(Object.keys(cluster.env)).toEqual(
      expect.arrayContaining([
        'E2B_API_URL',
        'E2B_SANDBOX_URL',
        'E2B_API_KEY',
        'E2B_VOLUME_API_URL',
      ]),
    )
    expect(cluster.processes.map((p) => p.name).sort()).toEqual([
      'api-1',
      'api-2',
      'node-1',
      'node-2',
      'proxy',
    ])
    for (const p of cluster.processes) expect(() => process.kill(p.pid, 0), p.name).not.toThrow()
  })

  it('every internal port refuses a caller without the cluster secret', async () => {
    const ca = readFileSync(join(cluster.dir, 'cluster', 'ca', 'cert.pem'), 'utf8')
    type Init = Parameters<typeof internalRequest>[2]
    const post: Init = {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    }
    const targets: Array<[string, Init]> = cluster.processes.flatMap(
      (p): Array<[string, Init]> =>
        p.name.startsWith('api-')
          ? [
              [`${p.internalUrl}/warren.api.v1.ProxyService/GetRoute`, post],
              [`${p.internalUrl}/metrics`, {}],
            ]
          : p.name.startsWith('node-')
            ? [
                [`${p.url}/warren.orchestrator.v1.OrchestratorService/List`, post],
                // What only an edge may say, said by a stranger.
                [`${p.internalUrl}/`, { headers: { 'x-warren-client-ip': '10.99.0.1' } }],
              ]
            : [],
    )
    expect(targets).toHaveLength(8)
    for (const [url, init] of targets) {
      const res = await internalRequest(url, ca, init)
      expect(res.status, `${url}: ${res.body}`).toBe(401)
      expect(JSON.parse(res.body), url).toMatchObject({ code: 401 })
    }
  })

  it('runs the SDK across both nodes and both replicas: create, commands, pause, resume, kill', async () => {
    const [api1, api2] = cluster.processes
      .filter((p) => p.name.startsWith('api-'))
      .map((p) => p.url)
    // Half through each replica, each used at once through the edge, which
    // follows replica 1's catalog: a create committed by replica 2 must be
    // routable before its notification reaches replica 1.
    const sandboxes = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        const apiUrl = (i % 2 ? api2 : api1) as string
        const sbx = await Sandbox.create({ ...opts(), apiUrl, timeoutMs: 120_000 })
        expect((await sbx.commands.run('echo at once')).stdout).toBe('at once\n')
        return sbx
      }),
    )
    try {
      const nodes = await Promise.all(sandboxes.map((s) => nodeOf(api1 as string, s.sandboxId)))
      // Placement spreads them.
      expect(new Set(nodes)).toEqual(new Set(['node-1', 'node-2']))
      for (const s of sandboxes) {
        const r = await s.commands.run('echo $((6 * 7)) > /tmp/x && cat /tmp/x')
        expect(r.stdout).toBe('42\n')
      }
      // Paused through one replica, resumed through the other; its files are there.
      const [first] = sandboxes as [Sandbox]
      await first.pause()
      const again = await Sandbox.connect(first.sandboxId, { ...opts(), apiUrl: api2 as string })
      expect((await again.commands.run('cat /tmp/x')).stdout).toBe('42\n')
    } finally {
      for (const s of sandboxes) await s.kill()
    }
    // Gone for the other replica too.
    for (const s of sandboxes) {
      const res = await fetch(`${api2}/sandboxes/${s.sandboxId}`, {
        method: 'DELETE',
        headers: { 'X-API-Key': cluster.sdk.apiKey },
      })
      expect([404, 410]).toContain(res.status)
    }
  })

  it('a node SIGKILLed: its sandboxes are reported lost (node_lost), once each, and creates go to the other', async () => {
    const [api1, api2] = cluster.processes
      .filter((p) => p.name.startsWith('api-'))
      .map((p) => p.url)
    const sandboxes = await Promise.all(
      Array.from({ length: 4 }, () => Sandbox.create({ ...opts(), timeoutMs: 120_000 })),
    )
    const onNode = await Promise.all(sandboxes.map((s) => nodeOf(api1 as string, s.sandboxId)))
    const lost = sandboxes.filter((_, i) => onNode[i] === 'node-2').map((s) => s.sandboxId)
    const kept = sandboxes.filter((_, i) => onNode[i] === 'node-1')
    expect(lost.length).toBeGreaterThan(0)
    const node2 = cluster.processes.find((p) => p.name === 'node-2') as { pid: number }
    process.kill(node2.pid, 'SIGKILL')
    try {
      const reasons = async () =>
        query<{ id: string; state: string; kill_reason: string | null }>(
          `SELECT id, state, kill_reason FROM sandboxes WHERE id IN (${lost.map((id) => `'${id}'`).join(',')})`,
        )
      await eventually(
        "node-2's sandboxes reported lost",
        async () => (await reasons()).every((r) => r.state === 'killed'),
        30_000,
        200,
      )
      expect((await reasons()).map((r) => r.kill_reason)).toEqual(lost.map(() => 'node_lost'))
      // Through either replica, new sandboxes land on the node that is left, and work.
      for (const apiUrl of [api1, api2] as string[]) {
        const sbx = await Sandbox.create({ ...opts(), apiUrl, timeoutMs: 60_000 })
        expect(await nodeOf(apiUrl, sbx.sandboxId)).toBe('node-1')
        expect((await sbx.commands.run('echo ok')).stdout).toBe('ok\n')
        await sbx.kill()
      }
      for (const s of kept) expect((await s.commands.run('echo still')).stdout).toBe('still\n')
    } finally {
      for (const s of kept) await s.kill().catch(() => {})
      // What the dead node left on the host, removed as its next start would.
      await cluster.reapNode(2)
    }
  })

  it('stops on Ctrl-C: its sandboxes killed, every process gone, nothing of it left on the host', async () => {
    // A sandbox left running for the stop to kill.
    const left = await Sandbox.create({ ...opts(), timeoutMs: 120_000 })
    expect((await left.commands.run('true')).exitCode).toBe(0)
    const { code, output } = await cluster.stop()
    expect(code, output).toBe(0)
    expect(output).toMatch(/Warren dev cluster stopped/)
    for (const p of cluster.processes) expect(() => process.kill(p.pid, 0), p.name).toThrow()
    expect(existsSync(join(cluster.dir, 'postgres', 'data', 'postmaster.pid'))).toBe(false)
    const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })
    for (let n = 1; n <= cluster.nodes; n++) {
      const prefix = `${cluster.prefix}${n}`
      expect(hostLeftovers(prefix, join(cluster.dir, `node-${n}`), { nodeGone: true })).toEqual([])
      expect(tables).not.toContain(`warren_${prefix}`)
    }
  })
})
