// Two API replicas of a real `warren dev-cluster` (private PostgreSQL, real
// runc nodes): a team limit holds across them under concurrent creates, and an
// expiry storm of 200 real sandboxes survives one replica being SIGKILLed
// midway — each expires exactly once, within a second of its endAt, and no
// container is left on either node.

import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually } from '../helpers/api-client.js'
import { type RunningDevCluster, startDevCluster } from '../helpers/dev-cluster.js'
import { runcContainers } from '../helpers/runc-list.js'

const STORM = 200

let cluster: RunningDevCluster

beforeAll(async () => {
  // Idle sandboxes use ~13 MiB each; let 200 of the base template's 512 MB fit.
  cluster = await startDevCluster({
    apis: 2,
    nodes: 2,
    env: { WARREN_MEMORY_CAPACITY_MB: '262144' },
  })
})

afterAll(async () => {
  await cluster?.teardown()
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

const replica = (n: number) =>
  cluster.processes.find((p) => p.name === `api-${n}`) as { url: string; pid: number }

async function create(
  apiUrl: string,
  timeout: number,
): Promise<{ status: number; id?: string; body: unknown }> {
  const res = await fetch(`${apiUrl}/v2/sandboxes`, {
    method: 'POST',
    headers: { 'x-api-key': cluster.sdk.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ templateID: 'base', timeout }),
  })
  const body = (await res.json()) as { sandboxID?: string }
  return { status: res.status, ...(body.sandboxID ? { id: body.sandboxID } : {}), body }
}

/** Containers runc still knows on node n. */
function containers(n: number): string[] {
  return runcContainers(join(cluster.dir, `node-${n}`, 'runc')).map((c) => c.id)
}

describe('API replicas of a real cluster', () => {
  it('hold one team limit across both under concurrent creates', async () => {
    const LIMIT = 6
    await query(`UPDATE teams SET max_concurrent = ${LIMIT}`)
    try {
      const results = await Promise.all(
        Array.from({ length: 3 * LIMIT }, (_, i) => create(replica((i % 2) + 1).url, 120)),
      )
      const created = results.filter((r) => r.status === 201)
      expect(created).toHaveLength(LIMIT)
      expect(results.filter((r) => r.status === 429)).toHaveLength(2 * LIMIT)
      expect(containers(1).length + containers(2).length).toBe(LIMIT)
      for (const r of created) {
        const res = await fetch(`${replica(2).url}/sandboxes/${r.id}`, {
          method: 'DELETE',
          headers: { 'x-api-key': cluster.sdk.apiKey },
        })
        expect(res.status).toBe(204)
      }
    } finally {
      await query('UPDATE teams SET max_concurrent = 1000')
    }
  })

  it(`expire ${STORM} real sandboxes exactly once each, within 1 s of endAt, though a replica is SIGKILLed midway`, async () => {
    // All are created first (with room to spare), then their deadlines are
    // set to fall over the next ~20 s, through both replicas.
    const ids: string[] = []
    for (let i = 0; i < STORM; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: 10 }, (_, j) => create(replica(((i + j) % 2) + 1).url, 900)),
      )
      for (const r of batch) {
        expect(r.status, JSON.stringify(r.body)).toBe(201)
        ids.push(r.id as string)
      }
    }
    for (let i = 0; i < STORM; i += 20) {
      await Promise.all(
        ids.slice(i, i + 20).map(async (id, j) => {
          const res = await fetch(`${replica(((i + j) % 2) + 1).url}/sandboxes/${id}/timeout`, {
            method: 'POST',
            headers: { 'x-api-key': cluster.sdk.apiKey, 'content-type': 'application/json' },
            body: JSON.stringify({ timeout: 5 + ((i + j) % 20) }),
          })
          expect(res.status).toBe(204)
        }),
      )
    }
    const inList = ids.map((id) => `'${id}'`).join(',')
    const killed = async () =>
      (
        await query<{ n: string }>(
          `SELECT count(*) AS n FROM sandboxes WHERE id IN (${inList}) AND state = 'killed'`,
        )
      )[0]?.n
    // Midway through the storm, replica 2 dies without a word (the edge follows replica 1).
    await eventually(
      'half the sandboxes expired',
      async () => Number(await killed()) >= STORM / 2,
      120_000,
      50,
    )
    process.kill(replica(2).pid, 'SIGKILL')
    await eventually(
      'every sandbox expired',
      async () => Number(await killed()) === STORM,
      120_000,
      200,
    )
    const rows = await query<{ kill_reason: string; end_at: number; killed_at: number }>(
      `SELECT kill_reason, end_at::float8 AS end_at, killed_at::float8 AS killed_at FROM sandboxes WHERE id IN (${inList})`,
    )
    expect(rows).toHaveLength(STORM)
    expect(new Set(rows.map((r) => r.kill_reason))).toEqual(new Set(['timeout']))
    const late = rows.map((r) => r.killed_at - r.end_at).sort((x, y) => x - y)
    console.log(
      `${STORM} real sandboxes: expiry lateness median ${late[late.length >> 1]} ms, max ${late.at(-1)} ms`,
    )
    expect(late[0]).toBeGreaterThanOrEqual(0)
    expect(late.at(-1)).toBeLessThanOrEqual(1000)
    // Every container is gone from both nodes, and no sandbox directory is left.
    await eventually(
      'the nodes hold no sandbox',
      () => containers(1).length + containers(2).length === 0,
      60_000,
    )
    // Teardowns finish after the kills answered: their directories go last.
    const dirsLeft = () =>
      [1, 2].flatMap((n) => {
        const dir = join(cluster.dir, `node-${n}`, 'sandboxes')
        return existsSync(dir) ? readdirSync(dir) : []
      })
    await eventually('no sandbox directory is left', () => dirsLeft().length === 0, 60_000)
  }, 600_000)
})
