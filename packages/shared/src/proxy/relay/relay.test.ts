import { createServer, type IncomingMessage, type Server } from 'node:http'
import {
  connect,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { type Cleanup, listenForTest } from '../../testing/listen.js'
import type { ForwardTarget, Resolution } from '../forward.js'
import { createRelay, type Relay, relayInFront } from './relay.js'

const cleanup: Cleanup = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

const listen = (server: Server | NetServer) => listenForTest(server, cleanup)

/** An upstream HTTP server that answers `/` with `ok`, and a few other paths. */
async function upstream(seen: IncomingMessage[] = []) {
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    seen.push(req)
    if (req.url === '/chunked') {
      res.write('a')
      setTimeout(() => res.end('b'), 5)
      return
    }
    if (req.url === '/hint') res.setHeader('keep-alive', 'timeout=2')
    res.setHeader('x-upstream', 'yes')
    res.end(req.method === 'HEAD' ? undefined : `ok ${req.url}`)
  })
  server.on('connection', (s) => sockets.add(s))
  server.on('upgrade', (_req, socket) => {
    socket.end('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: x\r\n\r\nhello')
  })
  return { port: await listen(server), sockets }
}

/** A relay in front of `resolve`, and the plain HTTP server it hands connections to. */
async function front(resolve: (req: IncomingMessage) => Promise<Resolution>) {
  const handedOff: string[] = []
  const fallback = createServer((req, res) => {
    handedOff.push(`${req.method} ${req.url}`)
    req.resume()
    req.on('end', () => res.end(`fallback ${req.url}`))
  })
  const relay: Relay = createRelay({ resolve })
  cleanup.push(() => relay.close())
  const port = await listen(
    createNetServer({ allowHalfOpen: true }, (socket) =>
      relay.accept(socket, undefined, (s, data) => {
        fallback.emit('connection', s)
        s.emit('data', data)
      }),
    ),
  )
  return { port, handedOff }
}

function target(port: number, extra: Partial<ForwardTarget> = {}): Resolution {
  return {
    target: {
      host: '127.0.0.1',
      port,
      unreachable: () => ({ status: 502, message: 'unreachable' }),
      ...extra,
    },
  }
}

/** Writes `text` on one connection and collects what comes back until `until` holds or it closes. */
function exchange(
  port: number,
  text: string | string[],
  until: (got: string) => boolean,
): Promise<{ got: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    let got = ''
    let settled = false
    const done = (closed: boolean) => {
      if (settled) return
      settled = true
      s.destroy()
      resolve({ got, closed })
    }
    s.on('data', (d) => {
      got += d.toString('latin1')
      if (until(got)) done(false)
    })
    s.on('close', () => done(true))
    s.on('error', reject)
    const parts = Array.isArray(text) ? text : [text]
    parts.forEach((p, i) => {
      setTimeout(() => s.write(p), i * 20)
    })
  })
}

const count = (s: string, what: string) => s.split(what).length - 1

describe('createRelay', () => {
  it('relays pipelined requests in order over one kept-alive upstream connection', async () => {
    const seen: IncomingMessage[] = []
    const up = await upstream(seen)
    const { port } = await front(async () =>
      target(up.port, { setHeaders: { 'x-set': '1' }, removeHeaders: ['x-secret'] }),
    )
    const req = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: a\r\nx-secret: s\r\nConnection: keep-alive, x-hop\r\nx-hop: h\r\n\r\n`
    const { got, closed } = await exchange(
      port,
      req('/1') + req('/2') + req('/chunked'),
      (g) => g.includes('ok /2') && g.endsWith('0\r\n\r\n'),
    )
    expect(closed).toBe(false)
    expect(got.indexOf('ok /1')).toBeLessThan(got.indexOf('ok /2'))
    expect(count(got, 'HTTP/1.1 200')).toBe(3)
    expect(seen.map((r) => r.url)).toEqual(['/1', '/2', '/chunked'])
    for (const r of seen) {
      expect(r.headers['x-set']).toBe('1')
      expect(r.headers['x-secret']).toBeUndefined()
      expect(r.headers['x-hop']).toBeUndefined()
      expect(r.headers['x-request-id']).toMatch(/./)
    }
    expect(up.sockets.size).toBe(1)
  })

  it('answers a resolver error itself, in JSON or as a page, and keeps the connection', async () => {
    const { port } = await front(async () => ({
      error: { status: 410, message: 'gone', sandboxId: 'sb' },
    }))
    const { got } = await exchange(
      port,
      'GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\n\r\n',
      (g) => g.includes('</html>'),
    )
    expect(count(got, 'HTTP/1.1 410 Gone')).toBe(2)
    expect(got).toContain('{"sandboxId":"sb","message":"gone","code":410}')
  })

  it('hands a request with a body, an upgrade or HTTP/1.0 to the HTTP server, with the bytes after it', async () => {
    const up = await upstream()
    const { port, handedOff } = await front(async () => target(up.port))
    const post = 'POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc'
    const { got } = await exchange(
      port,
      `GET /1 HTTP/1.1\r\nHost: a\r\n\r\n${post}GET /3 HTTP/1.1\r\nHost: a\r\n\r\n`,
      (g) => g.includes('fallback /3'),
    )
    expect(got).toContain('ok /1')
    expect(got).toContain('fallback /p')
    expect(handedOff).toEqual(['POST /p', 'GET /3'])
    const old = await exchange(port, 'GET /old HTTP/1.0\r\nHost: a\r\n\r\n', () => false)
    expect(old.got).toContain('fallback /old')
    expect(handedOff).toContain('GET /old')
  })

  it('tells a client that closes after its request that its connection closes, and keeps the upstream one', async () => {
    const seen: IncomingMessage[] = []
    const up = await upstream(seen)
    const { port, handedOff } = await front(async () => target(up.port))
    for (const path of ['/hint', '/chunked']) {
      const { got, closed } = await exchange(
        port,
        `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`,
        () => false,
      )
      expect(got).toMatch(/^HTTP\/1.1 200 OK\r\n/)
      // The server's own keep-alive headers are not the client's.
      expect(got).toMatch(/^connection: close\r$/im)
      expect(got).not.toMatch(/keep-alive/i)
      expect(got).toContain(path === '/hint' ? 'ok /hint' : '\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n')
      expect(closed).toBe(true)
    }
    expect(handedOff).toEqual([])
    // One upstream connection served both: closing was the client's alone.
    expect(seen.map((r) => r.headers.connection)).toEqual([undefined, undefined])
    expect(up.sockets.size).toBe(1)
  })

  it('rewrites only the final head for a closing client: 1xx heads and the framing stay as sent', async () => {
    const raw = createNetServer((s) => {
      s.once('data', () => {
        // Split mid-head: the final head is whole only with the second write.
        s.write(
          'HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nConnection: x-hop, ',
        )
        setTimeout(
          () =>
            s.write(
              'transfer-encoding\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n',
            ),
          20,
        )
      })
    })
    const { port } = await front(async () => target(await listen(raw)))
    const { got } = await exchange(
      port,
      'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      () => false,
    )
    expect(got).toBe(
      'HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n',
    )
  })

  it('answers 400 to a request smuggling attempt and closes', async () => {
    const up = await upstream()
    const { port } = await front(async () => target(up.port))
    const { got, closed } = await exchange(
      port,
      'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      () => false,
    )
    expect(got).toMatch(/^HTTP\/1.1 400/)
    expect(closed).toBe(true)
  })

  it('cuts an upstream that sends more than the answer, and never passes the rest on', async () => {
    const raw = createNetServer((s) => {
      s.once('data', () =>
        s.write(
          'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nforged',
        ),
      )
    })
    const rawPort = await listen(raw)
    const { port } = await front(async () => target(rawPort))
    const { got, closed } = await exchange(
      port,
      ['GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /2 HTTP/1.1\r\nHost: a\r\n\r\n'],
      () => false,
    )
    expect(closed).toBe(true)
    expect(got).not.toContain('forged')
  })

  it('answers HEAD without waiting for a body, and 502 when the upstream cannot be reached', async () => {
    const up = await upstream()
    const closedPort = await listen(createNetServer())
    cleanup.pop()?.()
    let i = 0
    const { port } = await front(async () => target(i++ === 0 ? up.port : closedPort))
    const { got } = await exchange(
      port,
      ['HEAD / HTTP/1.1\r\nHost: a\r\n\r\n', 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'],
      (g) => g.includes('unreachable'),
    )
    expect(got, got).toMatch(/^HTTP\/1.1 200 OK/)
    expect(got, got).toContain('HTTP/1.1 502 Bad Gateway')
  })

  it('answers the cancel reason when the target stops serving before the answer began', async () => {
    const hung = createNetServer(() => {})
    const hungPort = await listen(hung)
    const { EventEmitter } = await import('node:events')
    const signal = new EventEmitter()
    let settled = 0
    const cancel = {
      signal,
      reason: undefined as undefined | { status: number; message: string },
      onAbort: undefined as undefined | (() => void),
      settled: () => {
        settled++
      },
    }
    const { port } = await front(async () => {
      setTimeout(() => {
        cancel.reason = { status: 409, message: 'paused' }
        signal.emit('abort')
        cancel.onAbort?.()
      }, 50)
      return target(hungPort, { cancel })
    })
    const { got } = await exchange(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', (g) =>
      g.includes('paused'),
    )
    expect(got).toMatch(/^HTTP\/1.1 409/)
    expect(settled).toBe(1)
  })

  it('settles a request whose client leaves before the answer, and drops its upstream connection', async () => {
    const upstreamClosed: Promise<void>[] = []
    // Reads (and drops) the request, never answers.
    const hung = createNetServer((s) => {
      upstreamClosed.push(new Promise<void>((r) => s.on('close', () => r())))
      s.resume()
    })
    const hungPort = await listen(hung)
    let settled = 0
    const cancel = {
      signal: new (await import('node:events')).EventEmitter(),
      reason: undefined,
      onAbort: undefined as undefined | (() => void),
      settled: () => {
        settled++
      },
    }
    const { port } = await front(async () => target(hungPort, { cancel }))
    const client = connect(port, '127.0.0.1')
    await new Promise<void>((r) => client.once('connect', () => r()))
    client.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n')
    while (!upstreamClosed.length) await new Promise((r) => setTimeout(r, 10))
    // Gone for good (a reset): an ended client may still be waiting for its answer.
    client.resetAndDestroy()
    await upstreamClosed[0]
    await new Promise((r) => setTimeout(r, 20))
    expect(settled).toBe(1)
    expect(cancel.onAbort).toBeUndefined()
  })

  it('tries a fresh connection when a reused one was closed by its server, and honours Keep-Alive timeouts', async () => {
    const up = await upstream()
    const { port } = await front(async () => target(up.port))
    const first = await exchange(port, 'GET /hint HTTP/1.1\r\nHost: a\r\n\r\n', (g) =>
      g.includes('ok /hint'),
    )
    expect(first.got).toContain('ok /hint')
    // The server closes its idle connections now: the next request must not see it.
    for (const s of up.sockets) s.destroy()
    up.sockets.clear()
    const second = await exchange(port, 'GET /again HTTP/1.1\r\nHost: a\r\n\r\n', (g) =>
      g.includes('ok /again'),
    )
    expect(second.got).toContain('ok /again')
  })

  it('in front of an HTTP server: plain requests take the relay, the rest the server, and closing ends both', async () => {
    const up = await upstream()
    let resolved = 0
    const served: string[] = []
    const server = createServer((req, res) => {
      served.push(`${req.method} ${req.url}`)
      req.resume()
      req.on('end', () => res.end('server'))
    })
    relayInFront(
      server,
      createRelay({
        resolve: async () => {
          resolved++
          return target(up.port)
        },
      }),
    )
    const port = await listen(server)
    const { got } = await exchange(
      port,
      'GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx',
      (g) => g.includes('server'),
    )
    expect(got).toContain('ok /a')
    expect(resolved).toBe(1)
    expect(served).toEqual(['POST /b'])
    // An idle relayed connection does not hold the server's close.
    const idle = connect(port, '127.0.0.1')
    await new Promise<void>((r) => idle.once('connect', () => r()))
    idle.write('GET /c HTTP/1.1\r\nHost: a\r\n\r\n')
    await new Promise<void>((r) => idle.once('data', () => r()))
    const closed = new Promise<void>((r) => server.close(() => r()))
    server.closeAllConnections()
    await closed
    idle.destroy()
  })
})
