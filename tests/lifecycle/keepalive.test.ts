// Traffic keepalive (Warren's `lifecycle.keepalive.traffic`): proxied
// traffic extends a short lease while it flows and the sandbox ends a lease
// after it stops; without keepalive traffic changes nothing; however high the
// request rate, the API gets a bounded number of keepalive calls; an idle
// tunnel keeps nothing alive, one carrying bytes does.
import { randomBytes } from 'node:crypto'
import { Agent, request } from 'node:http'
import type { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { api, sleep } from '../helpers/api-client.js'
import {
  type CreatedSandbox,
  counter,
  detailOrGone,
  handle,
  startEchoServer,
  startHeartbeatServer,
  startServer,
  waitForGone,
} from '../helpers/lifecycle.js'
import { proxyRequest, sandboxHost } from '../helpers/proxy-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)
const PORT = 8000
const ECHO_PORT = 9000
const HEARTBEAT_PORT = 8100
const KEEPALIVE = { lifecycle: { keepalive: { traffic: { enabled: true } } } }

async function sandbox(
  timeout: number,
  body: Record<string, unknown> = {},
): Promise<{ c: CreatedSandbox; sbx: Sandbox; endAt: number }> {
  const c = await sandboxes.createRaw({
    timeout,
    metadata: { suite: 'lifecycle-keepalive' },
    ...body,
  })
  const endAt = Date.parse((await detailOrGone(warren(), c.sandboxID))!.endAt)
  return { c, sbx: handle(warren(), c), endAt }
}

const hit = (id: string) =>
  proxyRequest(warren(), { host: sandboxHost(warren(), id, PORT), path: '/' })

describe('keepalive by requests', { concurrent: true }, () => {
  it('a 3 s sandbox with keepalive lives 20 s on a request a second, then ends ~3 s after the last', async () => {
    const { c, sbx } = await sandbox(3, KEEPALIVE)
    await startServer(sbx, PORT)
    const until = Date.now() + 20_000
    let last = 0
    while (Date.now() < until) {
      const res = await hit(c.sandboxID)
      expect(res.status, res.text).toBe(200)
      last = Date.now()
      // One request a second: the rate is what is tested.
      await sleep(1000)
    }
    const d = (await detailOrGone(warren(), c.sandboxID))!
    expect(d.state).toBe('running')
    const gone = await waitForGone(warren(), c.sandboxID, 10_000)
    // The last request's report (at most one interval late) set endAt = then + 3 s.
    expect(gone - last).toBeGreaterThanOrEqual(2500)
    expect(gone - last).toBeLessThanOrEqual(5500)
  })

  it('request bodies reach a keepalive sandbox intact (the proxy counts them on the way)', async () => {
    const { sbx } = await sandbox(30, KEEPALIVE)
    const bytes = randomBytes(3 * 2 ** 20)
    await sbx.files.write('/tmp/upload.bin', bytes.buffer.slice(0) as ArrayBuffer)
    const back = await sbx.files.read('/tmp/upload.bin', { format: 'bytes' })
    expect(Buffer.from(back).equals(bytes)).toBe(true)
    expect((await sbx.commands.run('echo ok')).stdout).toBe('ok\n')
  })

  it('without keepalive a 3 s sandbox ends at its endAt despite traffic', async () => {
    // The 3 s lease starts once the server runs: on a busy machine starting it
    // can take longer than 3 s, and without keepalive nothing extends the lease.
    const { c, sbx } = await sandbox(30)
    await startServer(sbx, PORT)
    const set = await api(warren(), 'POST', `/sandboxes/${c.sandboxID}/timeout`, {
      json: { timeout: 3 },
    })
    expect(set.status, set.text).toBe(204)
    const endAt = Date.parse((await detailOrGone(warren(), c.sandboxID))!.endAt)
    let served = 0
    for (;;) {
      const res = await hit(c.sandboxID)
      if (res.status !== 200) break
      served++
      // Traffic spaced over the lease, as a user's would be.
      await sleep(250)
    }
    expect(served).toBeGreaterThan(0)
    const gone = await waitForGone(warren(), c.sandboxID, 5000)
    expect(gone - endAt).toBeLessThanOrEqual(1500)
  })

  it('an open but idle tunnel keeps nothing alive; one carrying bytes does', async () => {
    const [idle, busy] = await Promise.all([sandbox(3, KEEPALIVE), sandbox(3, KEEPALIVE)])
    await Promise.all([startEchoServer(idle.sbx, ECHO_PORT), startEchoServer(busy.sbx, ECHO_PORT)])
    const [idleWs, busyWs] = await Promise.all([tunnel(idle.c), tunnel(busy.c)])
    try {
      const opened = Date.now()
      let idleClosed: number | undefined
      idleWs.once('close', () => {
        idleClosed = Date.now()
      })
      const idleGoneAt = waitForGone(warren(), idle.c.sandboxID, 10_000)
      let echoed = 0
      busyWs.on('message', (d: Buffer) => {
        echoed += d.length
      })
      // Bytes through the busy tunnel every half second for 8 s.
      const until = opened + 8000
      while (Date.now() < until) {
        busyWs.send(Buffer.from('ping'))
        // Bytes spaced over the lease: the spacing is what is tested.
        await sleep(500)
      }
      // The idle one ended about a lease after it was opened, with its tunnel open
      // until then (the kill closes it).
      const idleGone = await idleGoneAt
      expect(idleGone - opened).toBeLessThanOrEqual(5500)
      expect(idleClosed ?? Number.POSITIVE_INFINITY).toBeGreaterThan(idleGone - 1000)
      expect((await detailOrGone(warren(), busy.c.sandboxID))?.state).toBe('running')
      expect(echoed).toBeGreaterThanOrEqual(4 * 14)
      const last = Date.now()
      const busyGone = await waitForGone(warren(), busy.c.sandboxID, 10_000)
      expect(busyGone - last).toBeGreaterThanOrEqual(2000)
      expect(busyGone - last).toBeLessThanOrEqual(5500)
    } finally {
      idleWs.terminate()
      busyWs.terminate()
    }
  })
  it('a WebSocket carrying only heartbeats (ping/pong) keeps nothing alive', async () => {
    const { c, sbx } = await sandbox(3, KEEPALIVE)
    await startHeartbeatServer(sbx, HEARTBEAT_PORT, 250)
    const ws = new WebSocket(`ws://127.0.0.1:${warren().ports.proxy}/`, {
      headers: { 'E2b-Sandbox-Id': c.sandboxID, 'E2b-Sandbox-Port': String(HEARTBEAT_PORT) },
      perMessageDeflate: false,
    })
    let pings = 0
    ws.on('ping', () => {
      pings++
    })
    ws.on('error', () => {})
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve())
        ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)))
      })
      const opened = Date.now()
      const gone = await waitForGone(warren(), c.sandboxID, 10_000)
      // Pings and the client's pongs flowed all along, but they are not traffic.
      expect(pings).toBeGreaterThanOrEqual(8)
      expect(gone - opened).toBeLessThanOrEqual(5500)
    } finally {
      ws.terminate()
    }
  })
})

describe('keepalive under load', () => {
  it('a high request rate for 10 s makes a bounded number of keepalive calls', async () => {
    const { c, sbx } = await sandbox(30, KEEPALIVE)
    await startServer(sbx, PORT)
    const before = await counter(warren(), 'warren_keepalive_calls_total')
    const { sent, failed, seconds } = await load(c.sandboxID, 1000, 10_000)
    const calls = (await counter(warren(), 'warren_keepalive_calls_total')) - before
    const rate = Math.round(sent / seconds)
    console.log(
      `[keepalive] ${sent} requests in ${seconds.toFixed(1)} s (${rate}/s), ${calls} keepalive calls`,
    )
    expect(failed).toBe(0)
    expect(sent).toBeGreaterThan(1000)
    // One report at once, then at most one per 1 s window: ~11 for 10 s.
    expect(calls).toBeGreaterThanOrEqual(5)
    expect(calls).toBeLessThanOrEqual(13)
    // The lease still follows the traffic: about 30 s from the last request.
    const endAt = Date.parse((await detailOrGone(warren(), c.sandboxID))!.endAt)
    expect(endAt).toBeGreaterThan(Date.now() + 25_000)
  })
})

function tunnel(c: CreatedSandbox): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${warren().ports.proxy}/tunnel?port=${ECHO_PORT}`, {
    headers: {
      'E2b-Sandbox-Id': c.sandboxID,
      'E2b-Sandbox-Port': '49983',
      'X-Access-Token': c.envdAccessToken!,
    },
    perMessageDeflate: false,
  })
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)),
    )
  })
}

/**
 * Requests at up to `rps` over a few keep-alive connections for `ms`; each
 * connection sends its next request when the previous one is answered.
 */
async function load(
  id: string,
  rps: number,
  ms: number,
): Promise<{ sent: number; failed: number; seconds: number }> {
  const connections = 16
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  const host = sandboxHost(warren(), id, PORT)
  const start = Date.now()
  let sent = 0
  let failed = 0
  const one = () =>
    new Promise<void>((resolve) => {
      const r = request(
        { host: '127.0.0.1', port: warren().ports.proxy, path: '/', headers: { host }, agent },
        (res) => {
          if (res.statusCode !== 200) failed++
          res.resume()
          res.on('end', () => resolve())
        },
      )
      r.on('error', () => {
        failed++
        resolve()
      })
      r.end()
    })
  const worker = async () => {
    while (Date.now() - start < ms) {
      // Pace: never ahead of `rps` overall.
      const due = start + (sent / rps) * 1000
      if (due > Date.now()) await sleep(due - Date.now())
      sent++
      await one()
    }
  }
  try {
    await Promise.all(Array.from({ length: connections }, worker))
  } finally {
    agent.destroy()
  }
  return { sent, failed, seconds: (Date.now() - start) / 1000 }
}
