// WebSockets through the proxy (envd's /tunnel to a TCP echo server in the
// sandbox) and `warren port-forward`, which rides the same tunnel.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { createInterface } from 'node:readline'
import type { Sandbox } from 'e2b'
import { beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { detail } from '../helpers/api-client.js'
import { CLI, connectionFlags } from '../helpers/cli.js'
import { sandboxHost } from '../helpers/proxy-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)
const ECHO_PORT = 9000
const ECHO_SERVER = `
import socket, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', ${ECHO_PORT}))
srv.listen(16)
def echo(c):
    while True:
        data = c.recv(65536)
        if not data:
            break
        c.sendall(data)
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
`
let sbx: Sandbox
let token: string

/** A sandbox with the echo server listening, and its envd access token. */
async function withEchoServer(): Promise<{ sbx: Sandbox; token: string }> {
  const sbx = await sandboxes.create({ timeoutMs: 120_000, metadata: { suite: 'tunnel' } })
  const token = (await detail(warren(), sbx.sandboxId)).envdAccessToken!
  await sbx.files.write('/tmp/echo.py', ECHO_SERVER)
  await sbx.commands.run('python3 /tmp/echo.py', { background: true })
  // Listening once a connection from inside the sandbox is echoed.
  await sbx.commands.run(
    `for i in $(seq 100); do python3 -c "import socket; s=socket.create_connection(('127.0.0.1', ${ECHO_PORT})); s.sendall(b'x'); assert s.recv(1)==b'x'" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
  )
  return { sbx, token }
}

beforeAll(async () => {
  ;({ sbx, token } = await withEchoServer())
})

function tunnel(headers: Record<string, string>): WebSocket {
  return new WebSocket(`ws://127.0.0.1:${warren().ports.proxy}/tunnel?port=${ECHO_PORT}`, {
    headers,
    perMessageDeflate: false,
  })
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)),
    )
  })
}

function refused(ws: WebSocket): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error('unexpectedly upgraded')))
    ws.on('error', () => {})
    ws.once('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (d: Buffer) => (text += d.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
    })
  })
}

/** Sends `data` in pieces and collects exactly as many bytes back. */
async function echoOverWebSocket(ws: WebSocket, data: Buffer): Promise<Buffer> {
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
  return Buffer.concat(chunks)
}

describe('WebSocket through the proxy', () => {
  it('carries raw TCP both ways to a server in the sandbox (E2b-Sandbox-Id routing)', async () => {
    const ws = tunnel({ 'e2b-sandbox-id': sbx.sandboxId, 'x-access-token': token })
    try {
      await opened(ws)
      const data = randomBytes(300_000)
      expect((await echoOverWebSocket(ws, data)).equals(data)).toBe(true)
    } finally {
      ws.terminate()
    }
  })

  it('routes by the {port}-{id}.{domain} host as well', async () => {
    const ws = tunnel({
      host: sandboxHost(warren(), sbx.sandboxId, 49983),
      'x-access-token': token,
    })
    try {
      await opened(ws)
      const data = Buffer.from('hello through the host route')
      expect((await echoOverWebSocket(ws, data)).toString()).toBe(data.toString())
    } finally {
      ws.terminate()
    }
  })

  it('is refused without the access token, and for an unknown sandbox', async () => {
    const noToken = await refused(tunnel({ 'e2b-sandbox-id': sbx.sandboxId }))
    expect(noToken.status).toBe(401)
    const unknown = await refused(
      tunnel({ 'e2b-sandbox-id': 'zzzzzzzzzzzzzzzzzzz0', 'x-access-token': token }),
    )
    expect(unknown).toEqual({
      status: 502,
      body: { sandboxId: 'zzzzzzzzzzzzzzzzzzz0', message: expect.any(String), code: 502 },
    })
  })

  it('is closed when the sandbox is killed under it', async () => {
    const victim = await withEchoServer()
    const ws = tunnel({ 'e2b-sandbox-id': victim.sbx.sandboxId, 'x-access-token': victim.token })
    try {
      await opened(ws)
      expect((await echoOverWebSocket(ws, Buffer.from('before'))).toString()).toBe('before')
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
      ws.on('error', () => {})
      expect(await victim.sbx.kill()).toBe(true)
      await closed
    } finally {
      ws.terminate()
    }
  })

  it('answers an upgrade to a closed sandbox port with 502 naming the port', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${warren().ports.proxy}/`, {
      headers: { host: sbx.getHost(9001) },
    })
    expect(await refused(ws)).toEqual({
      status: 502,
      body: { sandboxId: sbx.sandboxId, port: 9001, message: expect.any(String), code: 502 },
    })
  })
})

/** SIGTERM, then SIGKILL if it lingers; the exit code (null when killed by a signal). */
async function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  try {
    return await exited
  } finally {
    clearTimeout(timer)
  }
}

describe('warren port-forward', () => {
  it('forwards a local TCP port to the echo server in the sandbox', async () => {
    const child: ChildProcessWithoutNullStreams = spawn(
      process.execPath,
      [
        CLI,
        'port-forward',
        sbx.sandboxId,
        `0:${ECHO_PORT}`,
        '--json',
        ...connectionFlags(warren()),
      ],
      { env: { ...process.env, ...warren().env } },
    )
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve)
        child.once('exit', (code) => reject(new Error(`port-forward exited ${code}: ${stderr}`)))
      })
      const info = JSON.parse(line) as { sandboxId: string; local: string; remotePort: number }
      expect(info).toMatchObject({ sandboxId: sbx.sandboxId, remotePort: ECHO_PORT })
      const [host, port] = info.local.split(':')
      expect(host).toBe('127.0.0.1')

      // Two connections at once, each its own tunnel.
      const inputs = [randomBytes(100_000), Buffer.from('second connection')]
      const echoes = inputs.map(
        (data) =>
          new Promise<Buffer>((resolve, reject) => {
            const socket = connect(Number(port), host!)
            const back: Buffer[] = []
            let got = 0
            socket.on('data', (d: Buffer) => {
              back.push(d)
              got += d.length
              if (got >= data.length) {
                socket.end()
                resolve(Buffer.concat(back))
              }
            })
            socket.once('error', reject)
            socket.once('close', () => {
              if (got < data.length) reject(new Error(`closed after ${got} bytes: ${stderr}`))
            })
            socket.write(data)
          }),
      )
      const results = await Promise.all(echoes)
      expect(results[0]!.equals(inputs[0]!)).toBe(true)
      expect(results[1]!.toString()).toBe('second connection')
      // SIGTERM stops it, even with a forwarded connection still open.
      const open = connect(Number(port), host!)
      await new Promise<void>((resolve, reject) => {
        open.once('error', reject)
        open.write('ping')
        open.once('data', () => resolve())
      })
      const closed = new Promise<void>((resolve) => open.once('close', () => resolve()))
      open.on('error', () => {})
      expect(await stop(child)).toBe(0)
      await closed
    } finally {
      await stop(child)
    }
  })
})
