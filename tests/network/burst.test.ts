// Bursts of new connections into a small server: 100 simultaneous requests,
// each on a connection of its own, through the edge proxy to
// `python3 -m http.server` in a sandbox (listen backlog 5, so the burst
// overflows its accept queue unless the node proxy paces its connects) are
// all answered 200 — also when the burst is what wakes the paused sandbox.
// Long-lived requests and WebSockets on a port do not keep its connect
// window shut for the requests after them.
import { request } from 'node:http'
import type { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { detail, eventually } from '../helpers/api-client.js'
import { handle, pause, waitForState } from '../helpers/lifecycle.js'
import { proxyRequest, sandboxHost } from '../helpers/proxy-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)
const PY_PORT = 8000
const NODE_PORT = 8001
const BURST = 100

/** `python3 -m http.server` (backlog 5) serving a small file; returns once it answers inside. */
async function startPythonServer(sbx: Sandbox): Promise<void> {
  await sbx.files.write('/tmp/www/index.html', '<p>burst</p>\n')
  await sbx.commands.run(`python3 -m http.server ${PY_PORT} --bind 0.0.0.0`, {
    background: true,
    timeoutMs: 0,
    cwd: '/tmp/www',
  })
  await sbx.commands.run(
    `for i in $(seq 100); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:${PY_PORT}/index.html')" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
  )
}

/** `n` GETs at once, each on a new connection; their statuses (and bodies of failures). */
async function burst(id: string, n: number, path = '/index.html') {
  const host = sandboxHost(warren(), id, PY_PORT)
  const all = await Promise.all(
    Array.from({ length: n }, () => proxyRequest(warren(), { host, path })),
  )
  const statuses = new Map<number, number>()
  for (const r of all) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
  return {
    statuses: Object.fromEntries(statuses),
    failures: all.filter((r) => r.status !== 200).map((r) => r.text.slice(0, 200)),
    bodies: all.filter((r) => r.status === 200).map((r) => r.text),
  }
}

describe('a burst of new connections into a small server', () => {
  it('answers all 100 with 200, running and right after the burst wakes it from a pause', async () => {
    const c = await sandboxes.createRaw({
      timeout: 300,
      metadata: { suite: 'network-burst' },
      lifecycle: { onTimeout: 'pause', autoResume: true },
    })
    const id = c.sandboxID
    await startPythonServer(handle(warren(), c))

    const running = await burst(id, BURST)
    expect(running.statuses, running.failures.join('\n')).toEqual({ 200: BURST })
    expect(new Set(running.bodies)).toEqual(new Set(['<p>burst</p>\n']))

    expect(await pause(warren(), id)).toBe(204)
    await waitForState(warren(), id, 'paused')
    const woken = await burst(id, BURST)
    expect(woken.statuses, woken.failures.join('\n')).toEqual({ 200: BURST })
    expect(await detail(warren(), id)).toMatchObject({ state: 'running', resumedFrom: 'memory' })

    // And once more, now that the port's window has been learned.
    const again = await burst(id, BURST)
    expect(again.statuses, again.failures.join('\n')).toEqual({ 200: BURST })
  })

  it('long-lived requests and WebSockets do not hold the port’s window: a burst behind them is answered', async () => {
    const c = await sandboxes.createRaw({ timeout: 300, metadata: { suite: 'network-burst' } })
    const sbx = handle(warren(), c)
    // `/hang` answers only when told to (`/release`); an upgrade gets its 101 and stays open.
    const js = `
const hanging = []
const srv = require('http').createServer((req, res) => {
  if (req.url === '/hang') return void hanging.push(res)
  if (req.url === '/release') { for (const r of hanging.splice(0)) r.end('late\\n') }
  res.end('ok ' + hanging.length + '\\n')
})
srv.on('upgrade', (req, sock) => {
  sock.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n')
})
srv.listen(${NODE_PORT}, '0.0.0.0', 1024)
`
    await sbx.files.write('/tmp/hang.js', js)
    await sbx.commands.run('/opt/warren/bin/node /tmp/hang.js', { background: true, timeoutMs: 0 })
    await sbx.commands.run(
      `for i in $(seq 100); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:${NODE_PORT}/')" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
    )
    const host = sandboxHost(warren(), c.sandboxID, NODE_PORT)
    const port = warren().ports.proxy
    const open: Array<{ destroy(): void }> = []
    try {
      // More long-lived connections than a fresh window's places.
      const hangs = Array.from({ length: 8 }, () => {
        let settled = false
        const done = new Promise<number>((resolve, reject) => {
          const r = request(
            { host: '127.0.0.1', port, path: '/hang', headers: { host }, agent: false },
            (res) => {
              res.resume()
              res.on('end', () => {
                settled = true
                resolve(res.statusCode ?? 0)
              })
            },
          )
          r.on('error', reject)
          r.end()
          open.push(r)
        })
        return { done, settled: () => settled }
      })
      const upgrades = await Promise.all(
        Array.from(
          { length: 8 },
          () =>
            new Promise<number>((resolve, reject) => {
              const r = request({
                host: '127.0.0.1',
                port,
                path: '/ws',
                headers: {
                  host,
                  connection: 'Upgrade',
                  upgrade: 'websocket',
                  'sec-websocket-version': '13',
                  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
                },
                agent: false,
              })
              r.on('upgrade', (res, socket) => {
                open.push(socket)
                resolve(res.statusCode ?? 0)
              })
              r.on('response', (res) => resolve(res.statusCode ?? 0))
              r.on('error', reject)
              r.end()
            }),
        ),
      )
      expect(upgrades).toEqual(Array(8).fill(101))
      await eventually(
        'the server holds the 8 long-lived requests',
        async () =>
          (
            await sbx.commands.run(
              `python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:${NODE_PORT}/').read().decode())"`,
            )
          ).stdout.trim() === 'ok 8',
        15_000,
      )

      const fast = await Promise.all(
        Array.from({ length: 20 }, () => proxyRequest(warren(), { host, path: '/' })),
      )
      expect(fast.map((r) => r.status)).toEqual(Array(20).fill(200))
      // The long-lived requests were still open all along (each answer counts them).
      expect(hangs.some((h) => h.settled())).toBe(false)
      expect(fast.every((r) => r.text === 'ok 8\n')).toBe(true)

      const release = await proxyRequest(warren(), { host, path: '/release' })
      expect(release.status).toBe(200)
      expect(await Promise.all(hangs.map((h) => h.done))).toEqual(Array(8).fill(200))
    } finally {
      for (const o of open) o.destroy()
    }
  })
})
