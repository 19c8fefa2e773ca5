import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { eventually } from '../helpers/api-client.js'
import { freePort, initEnvd, type RunningEnvd, startEnvd } from './harness.js'

const TOKEN = 'tunnel-token'
let envd: RunningEnvd
let echo: Server
let echoPort: number
const serverSockets = new Set<Socket>()

beforeAll(async () => {
  // Short keepalive intervals so the unanswered-ping path runs in seconds.
  envd = await startEnvd({
    args: ['--tunnel-ping-interval-ms', '200', '--tunnel-pong-timeout-ms', '300'],
  })
  expect((await initEnvd(envd, { accessToken: TOKEN, defaultUser: 'user' })).status).toBe(204)
  echo = createServer((s) => {
    serverSockets.add(s)
    s.on('close', () => serverSockets.delete(s))
    s.on('error', () => {})
    s.pipe(s)
  })
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()))
  echoPort = (echo.address() as { port: number }).port
})
afterAll(async () => {
  await envd?.stop()
  await new Promise((r) => echo?.close(r))
})

/** A TCP server of the test's on loopback; its sockets' errors are the test's to ignore. */
async function serveLocal(
  onSocket: (s: Socket) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => {})
    onSocket(s)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return { server, port: (server.address() as { port: number }).port }
}

function open(query: string, headers: Record<string, string> = { 'X-Access-Token': TOKEN }) {
  return new WebSocket(`ws://127.0.0.1:${envd.port}/tunnel?${query}`, {
    headers,
    perMessageDeflate: false,
  })
}

function failure(ws: WebSocket): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (d) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
    })
    ws.on('open', () => reject(new Error('unexpectedly upgraded')))
    ws.on('error', () => {})
  })
}

const opened = (ws: WebSocket) =>
  new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
const closed = (ws: WebSocket) =>
  new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))

/** A process's resident memory, KiB. */
function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0)
}

/** Samples a process's resident memory every 10 ms; `stop` gives its peak growth since the start, KiB. */
function rssGrowth(pid: number): { stop(): number } {
  const before = rssKiB(pid)
  let peak = before
  const timer = setInterval(() => {
    peak = Math.max(peak, rssKiB(pid))
  }, 10)
  return {
    stop() {
      clearInterval(timer)
      return peak - before
    },
  }
}

/** The number of TCP connections envd holds, from its /proc fd table. */
async function envdSockets(): Promise<number> {
  const { readdirSync, readlinkSync } = await import('node:fs')
  let n = 0
  for (const fd of readdirSync(`/proc/${envd.pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${envd.pid}/fd/${fd}`).startsWith('socket:')) n++
    } catch {
      // closed meanwhile
    }
  }
  return n
}

describe('tunnel', () => {
  it('relays 10 MiB of random bytes both ways, byte-exact', async () => {
    const ws = open(`port=${echoPort}&host=127.0.0.1`)
    await opened(ws)
    const data = randomBytes(10 << 20)
    const received: Buffer[] = []
    let size = 0
    const done = new Promise<void>((resolve, reject) => {
      ws.on('message', (d: Buffer) => {
        received.push(d)
        size += d.length
        if (size >= data.length) resolve()
      })
      // Fail at once, not at the test timeout, if envd ends the tunnel early.
      ws.once('close', (code) => reject(new Error(`closed (${code}) after ${size} bytes`)))
    })
    for (let off = 0; off < data.length; off += 256 << 10)
      ws.send(data.subarray(off, off + (256 << 10)))
    await done
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
    expect(size).toBe(data.length)
    expect(sha(Buffer.concat(received))).toBe(sha(data))
    ws.close()
    await closed(ws)
  })

  it('delivers first what the server sends before the upgrade completes', async () => {
    // The server speaks at once: its greeting reaches envd while the upgrade is
    // still under way, and must be the tunnel's first bytes.
    const greeting = randomBytes(40 << 10)
    const { server: source, port } = await serveLocal((s) => {
      s.write(greeting)
      s.once('data', () => s.end('bye'))
    })
    try {
      const ws = open(`port=${port}&host=127.0.0.1`)
      const received: Buffer[] = []
      let size = 0
      const greeted = new Promise<void>((resolve) =>
        ws.on('message', (d: Buffer) => {
          received.push(d)
          size += d.length
          if (size === greeting.length) resolve()
        }),
      )
      const done = closed(ws)
      await opened(ws)
      await greeted
      ws.send('hi')
      expect(await done).toBe(1000)
      expect(Buffer.concat(received).equals(Buffer.concat([greeting, Buffer.from('bye')]))).toBe(
        true,
      )
    } finally {
      await new Promise((r) => source.close(r))
    }
  })

  it('relays 128 MiB to a slow reader byte-exact, holding back the fast server', async () => {
    const data = randomBytes(128 << 20)
    const { server: source, port } = await serveLocal((s) => {
      s.end(data)
    })
    let rss: { stop(): number } | undefined
    try {
      const ws = open(`port=${port}&host=127.0.0.1`)
      const received: Buffer[] = []
      let size = 0
      // A pause every 2 MiB: the server writes far faster than this client reads.
      let next = 2 << 20
      const done = closed(ws)
      // Listening before 'open': the server speaks first, and a first frame read
      // with the 101 is emitted before an `await opened(ws)` resumes.
      ws.on('message', (d: Buffer) => {
        received.push(d)
        size += d.length
        if (size < next) return
        next += 2 << 20
        ws.pause()
        setTimeout(() => ws.resume(), 15)
      })
      await opened(ws)
      rss = rssGrowth(envd.pid)
      expect(await done).toBe(1000)
      const growth = rss.stop()
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
      expect(size).toBe(data.length)
      expect(sha(Buffer.concat(received))).toBe(sha(data))
      // envd held a bounded window (its 4 MiB high-water mark, a read, garbage not yet
      // collected), not the 128 MiB the server wrote at once.
      expect(growth).toBeLessThan(64 << 10)
    } finally {
      rss?.stop()
      await new Promise((r) => source.close(r))
    }
  })

  it('delivers all a closed server sent to a client slower than the pong timeout', async () => {
    // The server sends 7 MiB and closes at once; the client reads nothing for
    // 1 s (over three pong timeouts). The sockets between envd and the client
    // take about 4 MiB: the rest waits in envd, under its 4 MiB high-water
    // mark, so envd reads the server to its end meanwhile.
    const data = randomBytes(7 << 20)
    const { server: source, port } = await serveLocal((s) => {
      s.end(data)
    })
    try {
      const ws = open(`port=${port}&host=127.0.0.1`)
      const received: Buffer[] = []
      ws.on('message', (d: Buffer) => received.push(d))
      ws.once('open', () => {
        ws.pause()
        setTimeout(() => ws.resume(), 1000)
      })
      const done = closed(ws)
      await opened(ws)
      expect(await done).toBe(1000)
      expect(Buffer.concat(received).equals(data)).toBe(true)
    } finally {
      await new Promise((r) => source.close(r))
    }
  })

  it('relays 64 MiB to a slow server byte-exact, holding back the fast client', async () => {
    const data = randomBytes(64 << 20)
    // Reads with a pause every 2 MiB, then answers the sha256 of all it got.
    const { server: sink, port } = await serveLocal((s) => {
      const hash = createHash('sha256')
      let got = 0
      let next = 2 << 20
      s.on('data', (d: Buffer) => {
        hash.update(d)
        got += d.length
        if (got === data.length) return void s.end(hash.digest('hex'))
        if (got < next) return
        next += 2 << 20
        s.pause()
        setTimeout(() => s.resume(), 15)
      })
    })
    let rss: { stop(): number } | undefined
    try {
      const ws = open(`port=${port}&host=127.0.0.1`)
      let answer = ''
      ws.on('message', (d: Buffer) => (answer += d.toString()))
      const done = closed(ws)
      await opened(ws)
      rss = rssGrowth(envd.pid)
      // 1 MiB messages, the client holding at most 4 MiB unsent.
      let off = 0
      const pump = () => {
        while (off < data.length) {
          const last = off + (1 << 20) >= data.length
          ws.send(data.subarray(off, off + (1 << 20)), () => {
            if (!last && ws.bufferedAmount < 1 << 20 && waiting) {
              waiting = false
              pump()
            }
          })
          off += 1 << 20
          if (ws.bufferedAmount >= 4 << 20) {
            waiting = true
            return
          }
        }
      }
      let waiting = false
      pump()
      expect(await done).toBe(1000)
      const growth = rss.stop()
      expect(answer).toBe(createHash('sha256').update(data).digest('hex'))
      // envd paused the WebSocket while TCP had bytes left to write: it held a
      // bounded window, not what the client could send.
      expect(growth).toBeLessThan(64 << 10)
    } finally {
      rss?.stop()
      await new Promise((r) => sink.close(r))
    }
  })

  it('answers 400 for a bad or missing port', async () => {
    for (const q of ['', 'port=0', 'port=99999', 'port=abc', `port=${echoPort}&host=bad%20host`]) {
      const res = await failure(open(q))
      expect(res.status).toBe(400)
      expect(res.body).toMatchObject({ code: 400, message: expect.any(String) })
    }
  })

  it('answers 502 when nothing listens on the port', async () => {
    const res = await failure(open(`port=${await freePort()}`))
    expect(res).toMatchObject({ status: 502, body: { code: 502 } })
  })

  it('answers 401 without the token', async () => {
    expect((await failure(open(`port=${echoPort}`, {}))).status).toBe(401)
    expect((await failure(open(`port=${echoPort}`, { 'X-Access-Token': 'nope' }))).status).toBe(401)
  })

  it('closes the WebSocket when the TCP side closes', async () => {
    const before = await envdSockets()
    const ws = open(`port=${echoPort}&host=127.0.0.1`)
    await opened(ws)
    await eventually('the echo server has the connection', () => serverSockets.size === 1, 5000, 25)
    const wsClosed = closed(ws)
    for (const s of serverSockets) s.destroy()
    expect(await wsClosed).toBe(1000)
    await eventually(
      'envd holds no more sockets than before',
      async () => (await envdSockets()) <= before,
      5000,
      25,
    )
  })

  it('closes the TCP side when the WebSocket closes', async () => {
    const before = await envdSockets()
    const ws = open(`port=${echoPort}&host=127.0.0.1`)
    await opened(ws)
    await eventually('the echo server has the connection', () => serverSockets.size === 1, 5000, 25)
    const [server] = serverSockets
    const tcpClosed = new Promise((r) => server!.once('close', r))
    ws.close()
    await tcpClosed
    await eventually(
      'envd and the echo server let go of the connection',
      async () => (await envdSockets()) <= before && serverSockets.size === 0,
      5000,
      25,
    )
  })

  it('tears down a client that stops answering pings', async () => {
    const before = await envdSockets()
    const ws = open(`port=${echoPort}&host=127.0.0.1`)
    await opened(ws)
    await eventually('the echo server has the connection', () => serverSockets.size === 1, 5000, 25)
    const [server] = serverSockets
    const tcpClosed = new Promise((r) => server!.once('close', r))
    // Stop the client's automatic pong replies: pause reading the socket.
    ws.pause()
    const started = Date.now()
    await tcpClosed
    expect(Date.now() - started).toBeLessThan(3000)
    await eventually(
      'envd holds no more sockets than before',
      async () => (await envdSockets()) <= before,
      5000,
      25,
    )
    ws.terminate()
  })

  it("answers a client's ping and echoes a close code, with the bytes sent before it", async () => {
    const ws = open(`port=${echoPort}&host=127.0.0.1`)
    await opened(ws)
    const pong = new Promise<string>((r) => ws.once('pong', (d: Buffer) => r(d.toString())))
    ws.ping('are you there')
    expect(await pong).toBe('are you there')
    const echoed = new Promise<string>((r) => ws.once('message', (d: Buffer) => r(d.toString())))
    ws.send('before the close')
    expect(await echoed).toBe('before the close')
    const code = closed(ws)
    ws.close(4001)
    expect(await code).toBe(4001)
  })

  it('cuts a client that breaks the protocol (an unmasked frame), and its TCP side', async () => {
    const ws = open(`port=${echoPort}&host=127.0.0.1`)
    await opened(ws)
    await eventually('the echo server has the connection', () => serverSockets.size === 1, 5000, 25)
    const [server] = serverSockets
    const tcpClosed = new Promise((r) => server!.once('close', r))
    const wsClosed = closed(ws)
    // A binary frame, 2 bytes, without the mask every client frame must have.
    ;(ws as unknown as { _socket: Socket })._socket.write(Buffer.from([0x82, 0x02, 0x68, 0x69]))
    await tcpClosed
    expect(await wsClosed).toBe(1006)
  })

  it('keeps a client that answers pings', async () => {
    const ws = open(`port=${echoPort}&host=127.0.0.1`)
    await opened(ws)
    let pings = 0
    ws.on('ping', () => pings++)
    // Time passing is the test: several ping intervals, the client answering each.
    await new Promise((r) => setTimeout(r, 1200))
    expect(pings).toBeGreaterThanOrEqual(3)
    expect(ws.readyState).toBe(WebSocket.OPEN)
    ws.send('still here')
    const echoed = await new Promise<string>((r) =>
      ws.once('message', (d: Buffer) => r(d.toString())),
    )
    expect(echoed).toBe('still here')
    ws.close()
    await closed(ws)
  })
})
