// More of what a sandbox does, under gVisor: a server's port through the
// edge proxy (and the documented limit: one bound to 127.0.0.1 is not
// reachable from outside), a terminal, a directory watch, and a node restart
// that adopts the gVisor sandbox with its runtime and rules and kills it
// cleanly afterwards. Privileged: root, runsc, runc, ip, nft.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { FilesystemEventType, type Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { api, detail, eventually } from '../helpers/api-client.js'
import { type CreatedSandbox, handle } from '../helpers/lifecycle.js'
import { proxyRequest } from '../helpers/proxy-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)

async function createGvisor(body: Record<string, unknown> = {}): Promise<Sandbox> {
  const created = await sandboxes.createRaw({
    timeout: 300,
    isolation: 'gvisor',
    metadata: { suite: 'gvisor-features' },
    ...body,
  })
  return handle(warren(), created)
}

function runscStatus(id: string): string | undefined {
  try {
    const out = execFileSync(
      'runsc',
      ['--root', join(warren().dataDir, 'runsc'), 'state', `${warren().prefix}-${id}`],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    )
    return (JSON.parse(out) as { status: string }).status
  } catch {
    return undefined
  }
}

describe('gVisor sandbox features', () => {
  it('serves a port through the edge proxy; a server on 127.0.0.1 stays inside', async () => {
    const sbx = await createGvisor()
    await sbx.files.write('/tmp/www/index.html', '<p>from gVisor</p>\n')
    await sbx.commands.run('python3 -m http.server 8000 --bind 0.0.0.0', {
      background: true,
      cwd: '/tmp/www',
    })
    await sbx.commands.run('python3 -m http.server 8001 --bind 127.0.0.1', {
      background: true,
      cwd: '/tmp/www',
    })
    const host = sbx.getHost(8000)
    await eventually(
      'the server answers through the proxy',
      async () => (await proxyRequest(warren(), { host, path: '/index.html' })).status === 200,
      15_000,
      100,
    )
    expect((await proxyRequest(warren(), { host, path: '/index.html' })).text).toBe(
      '<p>from gVisor</p>\n',
    )
    // Inside, the loopback server answers; from outside it does not (gVisor's
    // loopback is its own: the namespace DNAT runc sandboxes get cannot reach it).
    await eventually(
      'the loopback server listens',
      async () =>
        (
          await sbx.commands.run(
            'curl -s -o /dev/null -w %{http_code} http://127.0.0.1:8001/index.html || true',
          )
        ).stdout === '200',
      15_000,
      100,
    )
    const inside = await proxyRequest(warren(), { host: sbx.getHost(8001), path: '/index.html' })
    expect(inside.status).toBe(502)
  })

  it('carries a tunnel (envd /tunnel through the proxy) to a loopback-only server inside', async () => {
    const sbx = await createGvisor()
    const token = (await detail(warren(), sbx.sandboxId)).envdAccessToken!
    await sbx.files.write(
      '/tmp/echo.py',
      `import socket, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 9000))
srv.listen(4)
def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
while True:
    c, _ = srv.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
`,
    )
    await sbx.commands.run('python3 /tmp/echo.py', { background: true })
    await sbx.commands.run(
      `for i in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', 9000))" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
    )
    const ws = new WebSocket(`ws://127.0.0.1:${warren().ports.proxy}/tunnel?port=9000`, {
      headers: { 'e2b-sandbox-id': sbx.sandboxId, 'x-access-token': token },
      perMessageDeflate: false,
    })
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve())
        ws.once('error', reject)
      })
      const data = randomBytes(200_000)
      const chunks: Buffer[] = []
      let got = 0
      const done = new Promise<void>((resolve, reject) => {
        ws.on('message', (m: Buffer) => {
          chunks.push(m)
          got += m.length
          if (got >= data.length) resolve()
        })
        ws.once('close', () => reject(new Error(`closed after ${got} bytes`)))
      })
      for (let off = 0; off < data.length; off += 16_384) ws.send(data.subarray(off, off + 16_384))
      await done
      expect(Buffer.concat(chunks).equals(data)).toBe(true)
    } finally {
      ws.terminate()
    }
  })

  it('forks into gVisor sandboxes with the source’s files', async () => {
    const sbx = await createGvisor()
    await sbx.files.write('/home/user/source.txt', 'from the source\n')
    const res = await api(warren(), 'POST', `/sandboxes/${sbx.sandboxId}/fork`, {
      json: { count: 1 },
    })
    expect(res.status, res.text).toBe(201)
    const forks = res.body as Array<{ sandbox: CreatedSandbox }>
    expect(forks).toHaveLength(1)
    const sandbox = forks[0]!.sandbox
    sandboxes.add(sandbox.sandboxID)
    const fork = handle(warren(), sandbox)
    expect(await fork.files.read('/home/user/source.txt')).toBe('from the source\n')
    expect((await fork.commands.run('dmesg | head -1')).stdout).toMatch(/gVisor/)
    const got = await api(warren(), 'GET', `/sandboxes/${sandbox.sandboxID}`)
    expect((got.body as { isolation: string }).isolation).toBe('gvisor')
    // The source ran on, unfrozen, after its files were copied.
    expect((await sbx.commands.run('echo on')).stdout).toBe('on\n')
  })

  it('runs a terminal and watches a directory', async () => {
    const sbx = await createGvisor()
    let out = ''
    const decoder = new TextDecoder()
    const term = await sbx.pty.create({
      cols: 80,
      rows: 24,
      onData: (d) => {
        out += decoder.decode(d, { stream: true })
      },
    })
    await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size; tty; id -un\n'))
    await eventually(
      'the terminal answers',
      () => /24 80[\s\S]*\/dev\/pts\/\d+[\s\S]*user/.test(out),
      10_000,
    )
    await sbx.pty.sendInput(term.pid, new TextEncoder().encode('exit 0\n'))
    expect((await term.wait()).exitCode).toBe(0)

    await sbx.files.makeDir('/home/user/watched')
    const events: Array<{ name: string; type: FilesystemEventType }> = []
    const watch = await sbx.files.watchDir('/home/user/watched', (e) => {
      events.push({ name: e.name, type: e.type })
    })
    await sbx.files.write('/home/user/watched/new.txt', 'x')
    await sbx.commands.run('echo y > /home/user/watched/by-shell.txt')
    await eventually(
      'both writes are reported',
      () =>
        events.some((e) => e.name === 'new.txt' && e.type === FilesystemEventType.WRITE) &&
        events.some((e) => e.name === 'by-shell.txt'),
      10_000,
    )
    await watch.stop()
  })

  it('is adopted with its runtime and rules after a node crash, then killed cleanly', async () => {
    const sbx = await createGvisor({ network: { denyOut: ['203.0.113.0/24'] } })
    await sbx.commands.run('echo before > /home/user/kept.txt')
    await warren().stop(true)
    // The sandbox outlives its node.
    expect(runscStatus(sbx.sandboxId)).toBe('running')
    const tables = () => execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })
    expect(tables()).toMatch(new RegExp(`warren_${warren().prefix}_g\\d+`))
    await warren().start()
    expect((await sbx.commands.run('cat /home/user/kept.txt; dmesg | head -1')).stdout).toMatch(
      /^before\n.*gVisor/,
    )
    // Its rules were loaded again, on the host side of its veth.
    expect(tables()).toMatch(new RegExp(`warren_${warren().prefix}_g\\d+`))
    expect(await sbx.kill()).toBe(true)
    expect(runscStatus(sbx.sandboxId)).toBeUndefined()
    expect(tables()).not.toMatch(new RegExp(`warren_${warren().prefix}_g\\d+`))
  })
})
