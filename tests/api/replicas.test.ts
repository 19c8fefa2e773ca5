// Two real `warren api` processes on one private PostgreSQL and one node:
// they start at the same moment and migrate the store once, concurrent
// creates through both never pass the team's limit, and an expiry
// storm of 200 short sandboxes survives one of them being SIGKILLed midway —
// every sandbox expires exactly once (the node removes each once, the store
// keeps one timeout tombstone each), within a second of its endAt.
//
// The node is the in-memory stand-in orchestrator, served over HTTP on
// loopback: the API processes drive it through the same network client as a
// real node, and it counts every removal exactly (200 real sandboxes would
// measure runc, not the control plane).
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectNodeAdapter } from '@connectrpc/connect-node'
import { errorInterceptor } from '@warren/shared'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StandInNode } from '../../packages/api/src/testing/stand-in-node.js'
import { eventually } from '../helpers/api-client.js'
import { CLI } from '../helpers/cli.js'
import { freePort } from '../helpers/node-fixture.js'
import { type PrivatePostgres, startPostgres } from '../helpers/postgres.js'

const SANDBOXES = 200
const CLUSTER_SECRET = 'replicas-test-cluster-secret-0123'

interface Replica {
  name: string
  child: ChildProcess
  url: string
  internalUrl: string
}

let postgres: PrivatePostgres
let nodeServer: Server
const node = new StandInNode('node-1')
node.memoryMbTotal = 1 << 20
let dir: string
let failed = false
const replicas: Replica[] = []

/** Starts one `warren api` (its output in a log file); resolves once it listens. */
async function startReplica(name: string, env: Record<string, string>): Promise<Replica> {
  const port = await freePort()
  const internal = await freePort()
  const child = spawn(process.execPath, [CLI, 'api'], {
    env: {
      ...process.env,
      ...env,
      WARREN_API_PORT: String(port),
      WARREN_API_INTERNAL_PORT: String(internal),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const log = createWriteStream(join(dir, `${name}.log`))
  child.stdout?.pipe(log)
  child.stderr?.pipe(log)
  let out = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${out}`)), 60_000)
    const onData = (b: Buffer) => {
      out += b.toString()
      if (/api listening/.test(out)) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited ${code}:\n${out}`))
    })
  })
  const r = {
    name,
    child,
    url: `http://127.0.0.1:${port}`,
    internalUrl: `http://127.0.0.1:${internal}`,
  }
  replicas.push(r)
  return r
}

async function stopReplica(r: Replica, signal: NodeJS.Signals): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return
  const exited = new Promise((resolve) => r.child.once('exit', resolve))
  r.child.kill(signal)
  // A replica that does not stop within 10 s is killed: nothing outlives the test.
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

async function query<T>(sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: postgres.url })
  await c.connect()
  try {
    return (await c.query(sql)).rows as T[]
  } finally {
    await c.end()
  }
}

/** A counter of a replica's Prometheus text, summed over its labels matching `labels`. */
async function metric(r: Replica, name: string, labels = ''): Promise<number> {
  const res = await fetch(`${r.internalUrl}/metrics`, {
    headers: { authorization: `Bearer ${CLUSTER_SECRET}` },
  })
  if (!res.ok) throw new Error(`/metrics: ${res.status} ${await res.text()}`)
  const text = await res.text()
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0)
}

let env: Record<string, string>
let apiKey: string

beforeAll(async () => {
  dir = mkdtempSync('/tmp/warren-replicas-')
  postgres = await startPostgres()
  nodeServer = createServer(
    connectNodeAdapter({
      routes: (r) => node.routes(r),
      interceptors: [errorInterceptor(() => {})],
    }),
  )
  const nodePort = await freePort()
  await new Promise<void>((resolve) => nodeServer.listen(nodePort, '127.0.0.1', resolve))
  env = {
    WARREN_DATABASE_URL: postgres.url,
    WARREN_DATA_DIR: dir,
    WARREN_NODES: `node-1=http://127.0.0.1:${nodePort}`,
    WARREN_MAX_CONCURRENT_SANDBOXES: '1000',
    WARREN_NODE_SYNC_INTERVAL: '2',
    WARREN_LOG_LEVEL: 'info',
    // Every internal port wants it (the stand-in node takes any caller).
    WARREN_CLUSTER_SECRET: CLUSTER_SECRET,
  }
}, 60_000)

afterAll(async () => {
  for (const r of replicas) await stopReplica(r, 'SIGTERM')
  await new Promise((resolve) => nodeServer?.close(resolve))
  await postgres?.stop()
  if (failed) console.error(`replica logs kept in ${dir}`)
  else rmSync(dir, { recursive: true, force: true })
}, 60_000)

describe('two API replicas on one PostgreSQL', () => {
  it('start together and migrate the store once', async () => {
    try {
      await Promise.all([startReplica('a', env), startReplica('b', env)])
      const migrations = await query<{ name: string }>('SELECT name FROM kysely_migration')
      expect(new Set(migrations.map((m) => m.name)).size).toBe(migrations.length)
      expect(migrations.map((m) => m.name)).toContain('0006_replicas')
      expect(await query('SELECT id FROM teams')).toHaveLength(1)
      expect(await query('SELECT id FROM api_keys')).toHaveLength(1)
      expect(await query('SELECT id FROM replicas')).toHaveLength(2)
      apiKey = readFileSync(join(dir, 'first-api-key'), 'utf8').trim()
    } catch (err) {
      failed = true
      throw err
    }
  })

  it('hold one team limit across both under concurrent creates', async () => {
    try {
      const [a, b] = replicas as [Replica, Replica]
      const LIMIT = 20
      await query(`UPDATE teams SET max_concurrent = ${LIMIT}`)
      // 3 × LIMIT creates at once, half through each replica.
      const results = await Promise.all(
        Array.from({ length: 3 * LIMIT }, async (_, i) => {
          const res = await fetch(`${(i % 2 ? a : b).url}/v2/sandboxes`, {
            method: 'POST',
            headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
            body: JSON.stringify({ templateID: 'base', timeout: 300 }),
          })
          return { status: res.status, body: (await res.json()) as Record<string, unknown> }
        }),
      )
      const created = results.filter((r) => r.status === 201)
      const refused = results.filter((r) => r.status === 429)
      expect(created).toHaveLength(LIMIT)
      expect(refused).toHaveLength(2 * LIMIT)
      for (const r of refused) expect(r.body).toMatchObject({ code: 429 })
      expect(refused[0]?.body.message).toMatch(/team limit of 20/)
      const active = await query("SELECT id FROM sandboxes WHERE state <> 'killed'")
      expect(active).toHaveLength(LIMIT)
      expect(node.sandboxes.size).toBe(LIMIT)
      // Each is killed once (through either replica); the places are free again.
      const ids = created.map((r) => r.body.sandboxID as string)
      const kills = await Promise.all(
        ids.map(
          async (id, i) =>
            (
              await fetch(`${(i % 2 ? a : b).url}/sandboxes/${id}`, {
                method: 'DELETE',
                headers: { 'x-api-key': apiKey },
              })
            ).status,
        ),
      )
      expect(kills).toEqual(ids.map(() => 204))
      expect(node.sandboxes.size).toBe(0)
      expect(node.removed.map((r) => r.sandboxId).sort()).toEqual([...ids].sort())
      await query('UPDATE teams SET max_concurrent = 1000')
      // The storm below counts from zero.
      node.removed.length = 0
      node.calls.length = 0
    } catch (err) {
      failed = true
      throw err
    }
  })

  it(`expire ${SANDBOXES} sandboxes exactly once each, within 1 s of endAt, though one is SIGKILLed midway`, async () => {
    try {
      const [a, b] = replicas as [Replica, Replica]
      const create = async (r: Replica, timeout: number) => {
        const res = await fetch(`${r.url}/v2/sandboxes`, {
          method: 'POST',
          headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
          body: JSON.stringify({ templateID: 'base', timeout }),
        })
        if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`)
        return ((await res.json()) as { sandboxID: string }).sandboxID
      }
      // Deadlines 6–10 s after each create, through both replicas.
      const ids: string[] = []
      for (let i = 0; i < SANDBOXES; i += 10)
        ids.push(
          ...(await Promise.all(
            Array.from({ length: 10 }, (_, j) => create(j % 2 ? a : b, 6 + ((i + j) % 5))),
          )),
        )
      // Midway through the storm, A dies without a word.
      await eventually(
        'half the sandboxes expired',
        () => node.removed.length >= SANDBOXES / 2,
        30_000,
        20,
      )
      const claimedByA = await metric(a, 'warren_sandboxes_killed_total', 'reason="timeout"')
      await stopReplica(a, 'SIGKILL')
      // B settles what A left (after A's heartbeat goes stale) and expires the rest.
      await eventually(
        'every sandbox is a tombstone',
        async () => (await query("SELECT id FROM sandboxes WHERE state <> 'killed'")).length === 0,
        60_000,
        200,
      )
      const rows = await query<{
        id: string
        kill_reason: string
        end_at: number
        killed_at: number
      }>(
        `SELECT id, kill_reason, end_at::float8 AS end_at, killed_at::float8 AS killed_at FROM sandboxes WHERE id IN (${ids.map((id) => `'${id}'`).join(',')})`,
      )
      expect(rows).toHaveLength(SANDBOXES)
      expect(new Set(rows.map((r) => r.kill_reason))).toEqual(new Set(['timeout']))
      const late = rows.map((r) => r.killed_at - r.end_at).sort((x, y) => x - y)
      console.log(
        `expiry lateness over ${rows.length}: median ${late[late.length >> 1]} ms, max ${late.at(-1)} ms; ` +
          `A had expired ${claimedByA} before its SIGKILL; node removals ${node.removed.length}, ` +
          `kill calls ${node.callsOf('kill').length}`,
      )
      expect(late[0]).toBeGreaterThanOrEqual(0)
      expect(late.at(-1)).toBeLessThanOrEqual(1000)
      // The node removed each sandbox exactly once; nothing is left on it.
      expect(node.removed.map((r) => r.sandboxId).sort()).toEqual([...ids].sort())
      expect(node.sandboxes.size).toBe(0)
      // Both replicas took part before A died.
      expect(claimedByA).toBeGreaterThan(0)
      expect(claimedByA).toBeLessThan(SANDBOXES)
      // Node sync, now on B alone, finds nothing lost or orphaned.
      await sleep(2500)
      expect(node.sandboxes.size).toBe(0)
      const after = await query<{ kill_reason: string }>(
        `SELECT kill_reason FROM sandboxes WHERE id IN (${ids.map((id) => `'${id}'`).join(',')})`,
      )
      expect(after.map((r) => r.kill_reason)).toEqual(ids.map(() => 'timeout'))
    } catch (err) {
      failed = true
      throw err
    }
  }, 180_000)
})
