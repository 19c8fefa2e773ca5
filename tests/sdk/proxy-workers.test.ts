// The edge proxy on several worker processes (WARREN_PROXY_WORKERS=3):
// traffic really spreads over the workers (each connection's owner is read
// from the kernel's socket table), and what must happen once still happens
// once: keepalive reports stay at most one per sandbox per interval, a burst
// waking a paused sandbox makes one resume; a kill, a pause and new ingress
// rules reach every worker's open connections; a worker killed is replaced
// and traffic goes on; stopping Warren, even with SIGKILL, leaves no worker.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { describe, expect, it } from 'vitest'
import { api, sleep } from '../helpers/api-client.js'
import { bootOf, counter, handle, pause, startServer } from '../helpers/lifecycle.js'
import { proxyRequest, sandboxHost } from '../helpers/proxy-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const WORKERS = 3
const warren = useWarren({ env: { WARREN_PROXY_WORKERS: String(WORKERS) } })
const sandboxes = useSandboxes(warren)
const PORT = 8000
const TRAFFIC = { from: 'memory', trigger: 'traffic' }

/** The children of the running `warren up` (a zombie too: it is a child until reaped). */
function children(): number[] {
  const pid = warren().pid()
  if (!pid) return []
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
}

/** The proxy worker processes of the running `warren up` (its children running workers/worker.js). */
function workerPids(): number[] {
  return children().filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('workers/worker.js')
    } catch {
      return false
    }
  })
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Which processes own the proxy's established connections (server side), from `ss`. */
function connectionOwners(): number[] {
  const out = execFileSync(
    'ss',
    ['-Htnp', 'state', 'established', `( sport = :${warren().ports.proxy} )`],
    { encoding: 'utf8' },
  )
  return [...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]))
}

/** A request over `agent` (keep-alive connections the test holds open). */
function get(
  agent: Agent,
  host: string,
  path = '/',
): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const r = request(
      { host: '127.0.0.1', port: warren().ports.proxy, path, headers: { host }, agent },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString(),
            headers: res.headers,
          }),
        )
        res.on('error', reject)
      },
    )
    r.on('error', reject)
    r.end()
  })
}

/** `n` keep-alive connections, each opened by a request answered 200. */
async function openConnections(n: number, host: string): Promise<Agent> {
  const agent = new Agent({ keepAlive: true, maxSockets: n, maxFreeSockets: n })
  const first = await Promise.all(Array.from({ length: n }, () => get(agent, host)))
  for (const r of first) expect(r.status, r.text).toBe(200)
  return agent
}

/** One request on each of the agent's `n` open connections at once. */
const onEach = (agent: Agent, n: number, host: string) =>
  Promise.all(Array.from({ length: n }, (_, i) => get(agent, host, `/${i}`)))

async function serving(body: Record<string, unknown>) {
  const c = await sandboxes.createRaw({
    timeout: 120,
    metadata: { suite: 'proxy-workers' },
    ...body,
  })
  const sbx = handle(warren(), c)
  await startServer(sbx, PORT)
  return { id: c.sandboxID, sbx, host: sandboxHost(warren(), c.sandboxID, PORT) }
}

describe('edge proxy workers', () => {
  it(`runs ${WORKERS} workers, and connections spread over all of them`, async () => {
    const pids = workerPids()
    expect(pids).toHaveLength(WORKERS)
    const { host } = await serving({})
    const agent = await openConnections(WORKERS * 4, host)
    try {
      const owners = new Set(connectionOwners())
      for (const pid of pids)
        expect(owners.has(pid), `worker ${pid} holds no connection`).toBe(true)
    } finally {
      agent.destroy()
    }
  })

  it('traffic over every worker makes at most one keepalive report per sandbox per interval', async () => {
    const { id, host } = await serving({
      lifecycle: { keepalive: { traffic: { enabled: true } } },
    })
    const connections = WORKERS * 4
    const agent = await openConnections(connections, host)
    const owners = new Set(connectionOwners())
    expect(owners.size).toBe(WORKERS)
    // Let the reports of the connections' first requests settle into their window.
    await sleep(1500)
    const before = await counter(warren(), 'warren_keepalive_calls_total')
    const edgeBefore = await edgeCounter(`warren_proxy_keepalive_reports_total{sandbox_id="${id}"}`)
    const start = Date.now()
    let sent = 0
    try {
      while (Date.now() - start < 6000) {
        const all = await onEach(agent, connections, host)
        for (const r of all) expect(r.status, r.text).toBe(200)
        sent += all.length
      }
    } finally {
      agent.destroy()
    }
    const seconds = (Date.now() - start) / 1000
    await sleep(1500) // the trailing report of the last window
    const calls = (await counter(warren(), 'warren_keepalive_calls_total')) - before
    const edgeReports =
      (await edgeCounter(`warren_proxy_keepalive_reports_total{sandbox_id="${id}"}`)) - edgeBefore
    console.log(
      `[proxy-workers] ${sent} requests over ${WORKERS} workers in ${seconds.toFixed(1)} s: ${calls} keepalive calls`,
    )
    // One report per 1 s window (the default interval) across all workers:
    // each worker reporting on its own would make about three times as many.
    expect(sent).toBeGreaterThan(500)
    expect(calls).toBeGreaterThanOrEqual(Math.floor(seconds) - 1)
    expect(calls).toBeLessThanOrEqual(Math.ceil(seconds) + 2)
    // Every call is one of the primary's reports; one sent as the baselines
    // were read counts on one side only (the edge counts at sending).
    expect(Math.abs(edgeReports - calls)).toBeLessThanOrEqual(1)
  })

  it('60 new connections at once to a paused auto-resume sandbox: one resume, all answered 200', async () => {
    const { id, host } = await serving({ lifecycle: { onTimeout: 'pause', autoResume: true } })
    const boot = bootOf((await proxyRequest(warren(), { host })).text)
    expect(await pause(warren(), id)).toBe(204)
    const before = await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)
    // A connection each (the primary hands new connections to the workers in turn).
    const all = await Promise.all(
      Array.from({ length: 60 }, (_, i) => proxyRequest(warren(), { host, path: `/${i}` })),
    )
    for (const r of all) {
      expect(r.status, r.text).toBe(200)
      expect(bootOf(r.text)).toBe(boot)
    }
    expect(await counter(warren(), 'warren_sandboxes_resumed_total', TRAFFIC)).toBe(before + 1)
    // And the edge asked the API once: the primary runs one ResumeSandbox for
    // all workers (the API would merge concurrent ones too, so the count of
    // resumes alone would not show it).
    const asked = readFileSync(warren().logPath, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"rpc":"resumeSandbox"') && l.includes(id))
    expect(asked).toHaveLength(1)
  })

  it('a pause, new ingress rules and a kill reach the open connections of every worker', async () => {
    const { id, host } = await serving({})
    const connections = WORKERS * 4
    const agent = await openConnections(connections, host)
    try {
      expect(new Set(connectionOwners()).size).toBe(WORKERS)
      // After their first request the connections are carried natively (NativePins):
      // what follows must reach them there too.
      const PINNED = 'warren_proxy_pinned_connections'
      expect(await edgeCounter(PINNED)).toBeGreaterThanOrEqual(connections)

      // Ingress rules live in the node (in the primary): every worker asks it.
      const put = await api(warren(), 'PUT', `/sandboxes/${id}/network`, {
        json: { denyIn: ['0.0.0.0/0'] },
      })
      expect(put.status, put.text).toBeLessThan(300)
      for (const r of await onEach(agent, connections, host)) {
        expect(r.status, r.text).toBe(403)
        expect(r.text).toMatch(/ingress rules/)
      }
      expect(await edgeCounter(PINNED)).toBe(0)
      const cleared = await api(warren(), 'PUT', `/sandboxes/${id}/network`, { json: {} })
      expect(cleared.status, cleared.text).toBeLessThan(300)
      for (const r of await onEach(agent, connections, host)) expect(r.status, r.text).toBe(200)
      for (const r of await onEach(agent, connections, host)) expect(r.status, r.text).toBe(200)
      expect(await edgeCounter(PINNED)).toBeGreaterThanOrEqual(connections)

      // The catalog: the pause reaches each worker's copy (409: paused, no auto-resume).
      expect(await pause(warren(), id)).toBe(204)
      for (const r of await onEach(agent, connections, host)) expect(r.status, r.text).toBe(409)

      const killed = await api(warren(), 'DELETE', `/sandboxes/${id}`)
      expect(killed.status, killed.text).toBe(204)
      for (const r of await onEach(agent, connections, host)) {
        expect(r.status, r.text).toBe(410)
        expect(r.headers['x-warren-kill-reason']).toBe('request')
      }
    } finally {
      agent.destroy()
    }
  })

  it('requests waiting on a sandbox when it pauses are answered at once, on every worker', async () => {
    const { id, sbx, host } = await serving({})
    // A second server that answers only after 60 s: its requests are still
    // waiting when the pause freezes the sandbox.
    const SLOW = 8001
    await sbx.files.write(
      '/tmp/slow.js',
      `require('http').createServer((q, s) => setTimeout(() => s.end('late'), 60000)).listen(${SLOW})`,
    )
    await sbx.commands.run('/opt/warren/bin/node /tmp/slow.js', { background: true })
    const slowHost = sandboxHost(warren(), id, SLOW)
    await sbx.commands.run(
      `for i in $(seq 100); do ss -Hltn 'sport = :${SLOW}' | grep -q . && exit 0; sleep 0.1; done; exit 1`,
    )
    // One connection each (spread over the workers), all waiting.
    const n = WORKERS * 3
    const agent = new Agent({ keepAlive: false, maxSockets: n })
    try {
      const waiting = Array.from({ length: n }, () => get(agent, slowHost))
      await sleep(1000)
      const paused = pause(warren(), id)
      const answers = await Promise.all(waiting)
      expect(await paused).toBe(204)
      for (const r of answers) {
        // What a new request gets at that moment: pausing (503) or paused (409).
        expect([503, 409], r.text).toContain(r.status)
        expect(r.text).toMatch(/pausing|paused/)
      }
      // The port that answers at once was never disturbed.
      expect((await proxyRequest(warren(), { host })).status).toBe(409)
    } finally {
      agent.destroy()
    }
  })

  it('a worker killed is replaced, and traffic goes on meanwhile', async () => {
    const { host } = await serving({})
    const pids = workerPids()
    expect(pids).toHaveLength(WORKERS)
    const victim = pids[0]!
    process.kill(victim, 'SIGKILL')
    // Once the primary has reaped it (node:cluster then hands it no more
    // connections; one handed over at the very moment it died is lost with
    // it), new connections go to the workers alive, before its replacement.
    for (let i = 0; i < 100 && children().includes(victim); i++) await sleep(20)
    expect(children()).not.toContain(victim)
    for (let i = 0; i < 3 * WORKERS; i++) {
      const r = await proxyRequest(warren(), { host, path: `/during-${i}` })
      expect(r.status, r.text).toBe(200)
    }
    let now: number[] = []
    for (let i = 0; i < 100; i++) {
      now = workerPids()
      if (now.length === WORKERS && !now.includes(victim)) break
      await sleep(100)
    }
    expect(now).toHaveLength(WORKERS)
    expect(now).not.toContain(victim)
    // The replacement takes connections too, once it listens.
    let owners = new Set<number>()
    for (let i = 0; i < 50 && !now.every((pid) => owners.has(pid)); i++) {
      const agent = await openConnections(WORKERS * 4, host)
      owners = new Set(connectionOwners())
      agent.destroy()
      await sleep(100)
    }
    for (const pid of now) expect(owners.has(pid), `worker ${pid} holds no connection`).toBe(true)
  })

  it('stopping Warren stops every worker, a SIGKILL of the primary too', async () => {
    let pids = workerPids()
    expect(pids).toHaveLength(WORKERS)
    await warren().stop()
    await waitGone(pids)
    await warren().start()
    pids = workerPids()
    expect(pids).toHaveLength(WORKERS)
    await warren().stop(true)
    await waitGone(pids)
    await warren().start()
  })
})

async function waitGone(pids: number[]): Promise<void> {
  for (let i = 0; i < 50 && pids.some(alive); i++) await sleep(100)
  expect(pids.filter(alive)).toEqual([])
}

/** A series of the edge's own /metrics (summed over the workers), read with the cluster secret. */
async function edgeCounter(series: string): Promise<number> {
  const secret = readFileSync(`${warren().dataDir}/cluster/secret`, 'utf8').trim()
  const res = await proxyRequest(warren(), {
    path: '/metrics',
    headers: { authorization: `Bearer ${secret}` },
  })
  expect(res.status, res.text).toBe(200)
  const line = res.text.split('\n').find((l) => l.startsWith(`${series} `))
  return line ? Number(line.split(' ')[1]) : 0
}
