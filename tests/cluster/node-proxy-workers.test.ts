// The node proxy of `warren orchestrator` on two worker processes
// (WARREN_NODE_PROXY_WORKERS=2) sharing its port: both forward, each with
// the node's verdicts kept until the node says the sandbox changed, so a
// change of ingress rules or a kill reaches every worker's next request at
// once; a worker that dies is replaced.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Sandbox } from 'e2b'
import { beforeAll, describe, expect, it } from 'vitest'
import { api, eventually } from '../helpers/api-client.js'
import { internalRequest, useCluster } from '../helpers/cluster-fixture.js'

const cluster = useCluster({ nodes: 1, nodeEnv: () => ({ WARREN_NODE_PROXY_WORKERS: '2' }) })
const PORT = 8000

// Answers after the seconds its path names (`/0.5`), with the caller's address.
const SLOW = `import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(float(self.path.strip('/') or 0))
        body = b'ok'
        self.send_response(200)
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(('0.0.0.0', int(sys.argv[1])), H).serve_forever()
`

let sandboxId = ''
/** A direct caller's request to the node proxy, on a connection of its own. */
const direct = (path = '/0') =>
  internalRequest(`${cluster().nodes[0]!.proxyUrl}${path}`, cluster().ca, {
    headers: { host: `${PORT}-${sandboxId}.sandbox.test` },
    newConnection: true,
  })
const statuses = async (n: number) =>
  (await Promise.all(Array.from({ length: n }, () => direct()))).map((r) => r.status)

/** The node proxy's worker processes: the orchestrator's children running its worker. */
function workers(): number[] {
  const pid = cluster().nodes[0]!.pid()
  if (!pid) return []
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)
  return children.map(Number).filter((c) => {
    try {
      return readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('nodeproxy/worker.js')
    } catch {
      return false
    }
  })
}

async function putNetwork(body: Record<string, unknown>) {
  const res = await api(cluster(), 'PUT', `/sandboxes/${sandboxId}/network`, { json: body })
  expect(res.status, res.text).toBe(204)
}

beforeAll(async () => {
  const res = await api(cluster(), 'POST', '/v2/sandboxes', {
    json: { templateID: 'base', timeout: 300 },
  })
  expect(res.status, res.text).toBe(201)
  sandboxId = (res.body as { sandboxID: string }).sandboxID
  const sbx = await Sandbox.connect(sandboxId, { ...cluster().sdk })
  await sbx.files.write('/tmp/slow.py', SLOW)
  await sbx.commands.run(`python3 /tmp/slow.py ${PORT}`, { background: true })
  await eventually(
    'the server answers through the node proxy',
    async () => (await direct().catch(() => ({ status: 0 }))).status === 200,
    15_000,
    100,
  )
})

describe('the node proxy on two workers', () => {
  it('runs two worker processes, and both forward', async () => {
    const pids = workers()
    expect(pids).toHaveLength(2)
    // Slow answers hold their upstream connections open: whose sockets they are shows who forwards.
    const inFlight = Promise.all(Array.from({ length: 6 }, () => direct('/1.5')))
    let holders = new Set<number>()
    await eventually(
      'both workers hold upstream connections',
      async () => {
        const ss = execFileSync('ss', ['-Htnp', 'state', 'established', `( dport = :${PORT} )`], {
          encoding: 'utf8',
        })
        holders = new Set([...ss.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))
        return pids.every((p) => holders.has(p))
      },
      1400,
      50,
    ).catch(() => {
      throw new Error(`upstream connections held by ${[...holders]}, workers ${pids}`)
    })
    expect((await inFlight).map((r) => r.status)).toEqual(Array(6).fill(200))
  })

  it("a change of the sandbox's ingress rules reaches every worker's next request", async () => {
    // Each worker has judged (and kept) this caller's verdict.
    expect(await statuses(6)).toEqual(Array(6).fill(200))
    await putNetwork({ denyIn: [`0.0.0.0/0:${PORT}`] })
    expect(await statuses(6)).toEqual(Array(6).fill(403))
    await putNetwork({ denyIn: [] })
    expect(await statuses(6)).toEqual(Array(6).fill(200))
  })

  it('a worker that dies is replaced, and the proxy goes on serving', async () => {
    const [victim] = workers()
    process.kill(victim!, 'SIGKILL')
    await eventually(
      'another worker takes its place',
      async () => {
        const now = workers()
        return now.length === 2 && !now.includes(victim!)
      },
      10_000,
      100,
    )
    expect(await statuses(6)).toEqual(Array(6).fill(200))
  })

  it('a killed sandbox is refused by every worker at once', async () => {
    const res = await api(cluster(), 'DELETE', `/sandboxes/${sandboxId}`)
    expect(res.status, res.text).toBe(204)
    const all = await Promise.all(Array.from({ length: 6 }, () => direct()))
    for (const r of all) {
      expect(r.status, r.body).toBe(502)
      // The node's own answer, not a dial to where the sandbox was.
      expect(JSON.parse(r.body).message).toMatch(/^The sandbox (was not found|is )/)
    }
  })
})
