import { createServer, type IncomingMessage, type Server } from 'node:http'
import {
  connect,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from 'node:net'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type Cleanup, listenForTest } from '../../testing/listen.js'
import type { ForwardTarget, Resolution } from '../forward.js'
import { type NativePins, nativePins } from './native-pins.js'
import { createRelay, type Relay } from './relay.js'

const cleanup: Cleanup = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

let pins: NativePins
beforeAll(() => {
  const loaded = nativePins()
  if (!loaded) throw new Error('native/build/Release/pins.node is not built (npm run build)')
  pins = loaded
})

const listen = (server: Server | NetServer) => listenForTest(server, cleanup)

/** An upstream that answers `ok <path>` (and a few paths of their own), keeping connections. */
async function upstream(name = 'up', keepAliveMs = 5000) {
  const seen: IncomingMessage[] = []
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    seen.push(req)
    if (req.url === '/chunked') {
      res.write('a')
      setTimeout(() => res.end('b'), 5)
      return
    }
    if (req.url === '/slow') {
      setTimeout(() => res.end(`${name} slow`), 300)
      return
    }
    if (req.url === '/close') {
      res.setHeader('connection', 'close')
      res.end(`${name} closing`)
      return
    }
    if (req.url === '/hints') {
      res.writeEarlyHints({ link: '</a.css>; rel=preload' })
      res.end(`${name} hinted`)
      return
    }
    if (req.url === '/big') {
      res.end(Buffer.alloc(8 << 20, 'x'))
      return
    }
    if (req.method === 'POST') {
      let body = ''
      req.on('data', (d) => (body += d))
      req.on('end', () => res.end(`${name} got ${body}`))
      return
    }
    res.end(req.method === 'HEAD' ? undefined : `${name} ${req.url}`)
  })
  server.keepAliveTimeout = keepAliveMs
  server.on('connection', (s) => sockets.add(s))
  return { port: await listen(server), seen, sockets }
}

/** A relay with pins in front of `resolve`, and what it recorded. */
async function front(resolve: (req: IncomingMessage) => Resolution) {
  const resolved: string[] = []
  const recorded: number[] = []
  const handedOff: string[] = []
  const fallback = createServer((req, res) => {
    handedOff.push(`${req.method} ${req.url}`)
    req.resume()
    req.on('end', () => res.end(`fallback ${req.url}`))
  })
  const relay: Relay = createRelay({
    resolve: (req) => {
      resolved.push(`${req.method} ${req.url}`)
      return resolve(req)
    },
    pins,
    record: (status) => recorded.push(status),
  })
  cleanup.push(() => relay.close())
  const port = await listen(
    createNetServer({ allowHalfOpen: true }, (socket) =>
      relay.accept(socket, undefined, (s, data) => {
        fallback.emit('connection', s)
        s.emit('data', data)
      }),
    ),
  )
  return { port, resolved, recorded, handedOff, relay }
}

function pinned(port: number, touch?: () => void): Resolution {
  const t: ForwardTarget = {
    host: '127.0.0.1',
    port,
    setHeaders: { 'x-forwarded-for': '10.0.0.1', 'x-forwarded-proto': 'http' },
    removeHeaders: ['x-warren-secret'],
    unreachable: () => ({ status: 502, message: 'unreachable' }),
    pin: { sandboxId: 'sb1', same: ['host', 'x-token'], touch },
  }
  return { target: t }
}

/** One client connection: requests written, answers read as they come. */
function client(port: number) {
  const s = connect(port, '127.0.0.1')
  let got = ''
  let closed = false
  const waiters: (() => void)[] = []
  s.on('data', (d) => {
    got += d.toString('latin1')
    for (const w of waiters.splice(0)) w()
  })
  s.on('close', () => {
    closed = true
    for (const w of waiters.splice(0)) w()
  })
  s.on('error', () => {})
  cleanup.push(() => void s.destroy())
  const until = (ok: (g: string) => boolean, ms = 5000) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; got: ${got}`)), ms)
      const check = () => {
        if (ok(got) || closed) {
          clearTimeout(timer)
          resolve(got)
        } else waiters.push(check)
      }
      check()
    })
  return {
    socket: s,
    get got() {
      return got
    },
    get closed() {
      return closed
    },
    /** Sends `text` and waits until `count` answers containing `marker` arrived in all. */
    async send(text: string, marker: string, count = countOf(got, marker) + 1) {
      s.write(text)
      return until((g) => countOf(g, marker) >= count)
    },
    until,
  }
}

const countOf = (s: string, what: string) => s.split(what).length - 1
const get = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: sb1.test\r\nx-token: t\r\n${extra}\r\n`

async function until(ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('NativePins', () => {
  it('carries the later requests of a kept connection without resolving them again', async () => {
    const touches: number[] = []
    const up = await upstream()
    const f = await front(() => pinned(up.port, () => touches.push(1)))
    const c = client(f.port)
    for (let i = 0; i < 20; i++) await c.send(get(`/${i}`), `up /${i}`)
    expect(f.resolved).toEqual(['GET /0'])
    expect(pins.size).toBe(1)
    expect(up.sockets.size).toBe(1)
    expect(countOf(c.got, 'HTTP/1.1 200 OK')).toBe(20)
    // The upstream got each request as the relay sends it.
    const ids = new Set<string>()
    for (const r of up.seen) {
      expect(r.headers.host).toBe('sb1.test')
      expect(r.headers['x-forwarded-for']).toBe('10.0.0.1')
      expect(r.headers['x-forwarded-proto']).toBe('http')
      ids.add(String(r.headers['x-request-id']))
    }
    expect(ids.size).toBe(20)
    pins.drain()
    // The first answer is the relay's own (observe); the pin recorded the 19 after it.
    expect(f.recorded).toEqual(Array(19).fill(200))
    expect(touches.length).toBeGreaterThan(0)
  })

  it('drops what the relay drops, sets what the target sets, keeps a valid request id', async () => {
    const up = await upstream()
    const f = await front(() => pinned(up.port))
    const c = client(f.port)
    await c.send(get('/first'), 'up /first')
    await c.send(
      get(
        '/second',
        'Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Warren-Secret: s\r\nX-Forwarded-For: 6.6.6.6\r\nX-Request-Id: my-id.1\r\nX-Other: o\r\n',
      ),
      'up /second',
    )
    await c.send(get('/third', 'X-Request-Id: not valid!\r\n'), 'up /third')
    expect(f.resolved).toEqual(['GET /first'])
    const [, second, third] = up.seen
    expect(second?.headers['x-warren-secret']).toBeUndefined()
    expect(second?.headers['keep-alive']).toBeUndefined()
    expect(second?.headers.te).toBeUndefined()
    expect(second?.headers['x-forwarded-for']).toBe('10.0.0.1')
    expect(second?.headers['x-request-id']).toBe('my-id.1')
    expect(second?.headers['x-other']).toBe('o')
    expect(third?.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('gives back a request whose routing headers differ, or which it does not carry', async () => {
    const up = await upstream()
    const f = await front(() => pinned(up.port))
    const c = client(f.port)
    await c.send(get('/a'), 'up /a')
    // Another token: resolved again (and pinned again after).
    await c.send('GET /b HTTP/1.1\r\nHost: sb1.test\r\nx-token: u\r\n\r\n', 'up /b')
    // A method other than GET and HEAD.
    await c.send('DELETE /c HTTP/1.1\r\nHost: sb1.test\r\nx-token: t\r\n\r\n', 'up /c')
    await c.send(get('/d'), 'up /d')
    // A body: the HTTP server's from then on, as the relay hands it over.
    await c.send(
      'POST /e HTTP/1.1\r\nHost: sb1.test\r\nx-token: t\r\nContent-Length: 3\r\n\r\nabc',
      'fallback /e',
    )
    expect(f.resolved).toEqual(['GET /a', 'GET /b', 'DELETE /c', 'GET /d'])
    expect(f.handedOff).toEqual(['POST /e'])
    expect(c.closed).toBe(false)
  })

  it("gives a head it cannot read strictly to JavaScript's parser, which answers it", async () => {
    const up = await upstream()
    const f = await front(() => pinned(up.port))
    const c = client(f.port)
    await c.send(get('/a'), 'up /a')
    // A control byte in a value: llhttp refuses it (400) and ends the connection.
    await c.send(get('/b', 'x-bad: a\u0001b\r\n'), 'HTTP/1.1 400')
    await c.until(() => c.closed)
    const d = client(f.port)
    await d.send(get('/a'), 'up /a')
    // Past 16 KiB: 431.
    await d.send(get('/c', `x-big: ${'b'.repeat(17_000)}\r\n`), 'HTTP/1.1 431')
    expect(up.seen.map((r) => r.url)).toEqual(['/a', '/a'])
  })

  it('frames chunked, HEAD and pipelined answers', async () => {
    const up = await upstream()
    const f = await front(() => pinned(up.port))
    const c = client(f.port)
    await c.send(get('/first'), 'up /first')
    const head = 'HEAD / HTTP/1.1\r\nHost: sb1.test\r\nx-token: t\r\n\r\n'
    const got = await c.send(get('/chunked') + head + get('/hints') + get('/last'), 'up /last')
    expect(got).toContain('1\r\na\r\n1\r\nb\r\n0\r\n\r\n')
    expect(got).toContain('HTTP/1.1 103 Early Hints')
    expect(got.indexOf('up hinted')).toBeLessThan(got.indexOf('up /last'))
    expect(countOf(got, 'HTTP/1.1 200 OK')).toBe(5)
    expect(f.resolved).toEqual(['GET /first'])
    expect(up.seen.map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET /first',
      'GET /chunked',
      'HEAD /',
      'GET /hints',
      'GET /last',
    ])
  })

  it('closes the client after an answer whose upstream closes, as the relay does', async () => {
    const up = await upstream()
    const f = await front(() => pinned(up.port))
    const c = client(f.port)
    await c.send(get('/a'), 'up /a')
    await c.send(get('/close'), 'up closing')
    await c.until(() => c.closed)
    expect(c.got).toMatch(/connection: close/i)
    expect(f.resolved).toEqual(['GET /a'])
    await until(() => pins.size === 0)
  })

  it('on release, resolves the next request again', async () => {
    const up = await upstream()
    let gone = false
    const f = await front(() =>
      gone ? { error: { status: 410, message: 'killed' } } : pinned(up.port),
    )
    const c = client(f.port)
    await c.send(get('/a'), 'up /a')
    await c.send(get('/b'), 'up /b')
    gone = true
    pins.release('sb1')
    expect(pins.size).toBe(0)
    await c.send(get('/c'), 'HTTP/1.1 410')
    expect(f.resolved).toEqual(['GET /a', 'GET /c'])
  })

  it('on release before the answer began, resolves the request again, on its new route', async () => {
    const first = await upstream('first')
    const second = await upstream('second')
    let moved = false
    const f = await front(() => pinned(moved ? second.port : first.port))
    const c = client(f.port)
    await c.send(get('/a'), 'first /a')
    const answered = c.send(get('/slow'), 'slow')
    await until(() => first.seen.length === 2)
    moved = true
    pins.release('sb1')
    const got = await answered
    expect(got).toContain('second slow')
    expect(got).not.toContain('first slow')
    expect(f.resolved).toEqual(['GET /a', 'GET /slow'])
  })

  it('mid-answer, a release waits for the answer to end', async () => {
    const first = await upstream('first')
    let moved = false
    const f = await front(() =>
      moved ? { error: { status: 503, message: 'moved' } } : pinned(first.port),
    )
    const c = client(f.port)
    await c.send(get('/a'), 'first /a')
    c.socket.write(get('/big'))
    await c.until((g) => g.length > 100_000)
    moved = true
    pins.release('sb1')
    await c.until((g) => g.length >= 8 << 20)
    await c.send(get('/b'), 'HTTP/1.1 503')
    expect(f.resolved).toEqual(['GET /a', 'GET /b'])
  })

  it('when the upstream closes an idle connection, the next request is answered anew', async () => {
    const up = await upstream('up', 200)
    const f = await front(() => pinned(up.port))
    const c = client(f.port)
    await c.send(get('/a'), 'up /a')
    await c.send(get('/b'), 'up /b')
    await until(() => pins.size === 0)
    const got = await c.send(get('/c'), 'up /c')
    expect(got).toContain('up /c')
    expect(c.closed).toBe(false)
    expect(f.resolved).toEqual(['GET /a', 'GET /c'])
  })

  it('leaves nothing open when the client goes mid-answer, or the relay closes', async () => {
    const up = await upstream()
    const f = await front(() => pinned(up.port))
    const c = client(f.port)
    await c.send(get('/a'), 'up /a')
    c.socket.write(get('/big'))
    await c.until((g) => g.length > 1000)
    c.socket.destroy()
    await until(() => pins.size === 0)
    await until(() => [...up.sockets].every((s) => s.destroyed))

    const d = client(f.port)
    await d.send(get('/a'), 'up /a')
    await d.send(get('/b'), 'up /b')
    expect(pins.size).toBe(1)
    f.relay.close()
    expect(pins.size).toBe(0)
    await d.until(() => d.closed)
    expect(d.closed).toBe(true)
  })
})
