import { createHash, randomBytes } from 'node:crypto'
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http'
import {
  type AddressInfo,
  connect,
  createServer as createTcpServer,
  type Socket,
  type Server as TcpServer,
} from 'node:net'
import { type NativeCarry, nativeCarry } from '@warren/shared'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { HttpForwarder } from './http-forward.js'
import { RELAY_CHUNK } from './relay.js'

const servers: Array<Server | TcpServer> = []
const forwarders: HttpForwarder[] = []
afterEach(async () => {
  for (const f of forwarders.splice(0)) f.close()
  for (const s of servers.splice(0)) {
    if ('closeAllConnections' in s) s.closeAllConnections()
    await new Promise<void>((r) => s.close(() => r()))
  }
})

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { server, port: (server.address() as AddressInfo).port }
}

/** An upstream server, and a front that forwards every request to it as the egress proxy does. */
async function rig(
  carry: NativeCarry | undefined,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
) {
  const upstream = await listen(handler)
  const upstreamConnections: Socket[] = []
  upstream.server.on('connection', (s) => upstreamConnections.push(s))
  const forwarder = new HttpForwarder(carry)
  forwarders.push(forwarder)
  const front = await listen((req, res) => {
    void forwarder.forward(req, res, '127.0.0.1', upstream.port, (err) => ({
      status: 502,
      message: `unreachable: ${err.message}`,
    }))
  })
  return { port: front.port, upstreamConnections, upstream }
}

/** A raw TCP upstream answering as `onConnection` says, and a front forwarding to it. */
async function rawRig(carry: NativeCarry | undefined, onConnection: (c: Socket) => void) {
  const raw = createTcpServer((c) => {
    c.on('error', () => {})
    onConnection(c)
  })
  servers.push(raw)
  const rawPort = await new Promise<number>((r) =>
    raw.listen(0, '127.0.0.1', () => r((raw.address() as AddressInfo).port)),
  )
  const forwarder = new HttpForwarder(carry)
  forwarders.push(forwarder)
  return listen((req, res) => {
    void forwarder.forward(req, res, '127.0.0.1', rawPort, () => ({ status: 502, message: 'x' }))
  })
}

interface Got {
  status: number
  headers: IncomingMessage['headers']
  body: Buffer
}

function ask(
  port: number,
  opts: { method?: string; path?: string; body?: Buffer; chunked?: boolean; agent?: Agent } = {},
): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        agent: opts.agent ?? false,
        headers: opts.body && !opts.chunked ? { 'content-length': opts.body.length } : {},
      },
      (res) => {
        const parts: Buffer[] = []
        res.on('data', (d: Buffer) => parts.push(d))
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    if (opts.body && opts.chunked) {
      // Several chunks, so the request really is chunked.
      const third = Math.ceil(opts.body.length / 3)
      for (let i = 0; i < opts.body.length; i += third) req.write(opts.body.subarray(i, i + third))
    } else if (opts.body) req.write(opts.body)
    req.end()
  })
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

const carry = nativeCarry()
if (!carry)
  throw new Error('packages/shared/native/build/Release/carry.node is not built (npm run build)')

describe.each([
  ['copied', undefined],
  ['kernel-carried', carry],
] as const)('HttpForwarder, bodies %s', (_, carry) => {
  it('carries large bodies byte for byte, by Content-Length and chunked, to a slow reader too', async () => {
    const body = randomBytes(20 * RELAY_CHUNK + 3)
    const { port } = await rig(carry, (req, res) => {
      if (req.url === '/length') res.writeHead(200, { 'content-length': body.length, 'x-a': 'b' })
      else res.writeHead(200, { 'x-a': 'b' }) // chunked
      // Written in odd pieces, so chunk sizes and reads do not line up.
      for (let i = 0; i < body.length; i += 100_003) res.write(body.subarray(i, i + 100_003))
      res.end()
    })
    for (const path of ['/length', '/chunked']) {
      const got = await ask(port, { path })
      expect(got.status).toBe(200)
      expect(got.headers['x-a']).toBe('b')
      expect(sha(got.body)).toBe(sha(body))
    }
    // A reader that keeps pausing: the proxy's writes queue and its reads must wait.
    const hash = createHash('sha256')
    let length = 0
    await new Promise<void>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/length', agent: false }, (res) => {
        res.on('data', (d: Buffer) => {
          hash.update(d)
          length += d.length
          res.pause()
          setTimeout(() => res.resume(), 1)
        })
        res.on('end', () => resolve())
        res.on('error', reject)
      })
        .on('error', reject)
        .end()
    })
    expect(length).toBe(body.length)
    expect(hash.digest('hex')).toBe(sha(body))
  })

  it('carries request bodies, by Content-Length and chunked, and drops hop-by-hop headers', async () => {
    const body = randomBytes(3 * RELAY_CHUNK + 11)
    const { port } = await rig(carry, (req, res) => {
      const parts: Buffer[] = []
      req.on('data', (d: Buffer) => parts.push(d))
      req.on('end', () =>
        res.end(
          JSON.stringify({
            sha: sha(Buffer.concat(parts)),
            te: req.headers['transfer-encoding'] ?? null,
            proxyAuth: req.headers['proxy-authorization'] ?? null,
          }),
        ),
      )
    })
    for (const chunked of [false, true]) {
      const got = await ask(port, { method: 'POST', body, chunked })
      expect(JSON.parse(got.body.toString())).toEqual({
        sha: sha(body),
        te: chunked ? 'chunked' : null,
        proxyAuth: null,
      })
    }
  })

  it('keeps one upstream connection for a kept-alive client, in order, HEAD and 204 included', async () => {
    const { port, upstreamConnections } = await rig(carry, (req, res) => {
      if (req.url === '/empty') return res.writeHead(204).end()
      res.writeHead(200, { 'content-length': 5 })
      res.end(req.method === 'HEAD' ? undefined : req.url!.slice(1, 6).padEnd(5, '.'))
    })
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const got: string[] = []
      for (const [method, path] of [
        ['GET', '/one'],
        ['HEAD', '/two'],
        ['GET', '/empty'],
        ['GET', '/three'],
      ] as const) {
        const r = await ask(port, { method, path, agent })
        got.push(`${r.status} ${r.headers['content-length'] ?? '-'} ${r.body.toString()}`)
      }
      expect(got).toEqual(['200 5 one..', '200 5 ', '204 - ', '200 5 three'])
      expect(upstreamConnections).toHaveLength(1)
    } finally {
      agent.destroy()
    }
  })

  it('sends upstream exactly the first Host, however many the request had', async () => {
    const { port } = await rig(carry, (req, res) => res.end(JSON.stringify(req.rawHeaders)))
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1')
      let out = ''
      s.on('data', (d: Buffer) => {
        out += d.toString()
      })
      s.on('end', () => resolve(out))
      s.on('error', reject)
      s.write(
        'GET / HTTP/1.1\r\nHost: judged.test\r\nX-A: 1\r\nhost: other.test\r\nConnection: close\r\n\r\n',
      )
    })
    const raw = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as string[]
    const hosts = raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'host')
    expect(hosts).toEqual(['judged.test'])
    expect(raw).toContain('X-A')
  })

  it('frames a request body itself, whatever the Connection header names', async () => {
    const seen: string[] = []
    const { port } = await rig(carry, (req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => {
        body += d.toString()
      })
      req.on('end', () => {
        seen.push(`${req.method} ${req.headers.host} ${body}`)
        res.end('ok')
      })
    })
    // Were Content-Length dropped as named by Connection, the server would
    // read the body as a second request, for a Host nobody judged.
    const smuggled = 'GET /x HTTP/1.1\r\nHost: other.test\r\n\r\n'
    await new Promise<void>((resolve, reject) => {
      const s = connect(port, '127.0.0.1')
      s.on('data', () => {})
      s.on('end', () => resolve())
      s.on('error', reject)
      s.write(
        `POST / HTTP/1.1\r\nHost: judged.test\r\nConnection: close, content-length\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
      )
    })
    expect(seen).toEqual([`POST judged.test ${smuggled}`])
  })

  it('answers pipelined requests in order', async () => {
    const { port } = await rig(carry, (req, res) => {
      // The first answer is the slowest: order must come from the proxy.
      setTimeout(() => res.end(req.url), req.url === '/a' ? 50 : 0)
    })
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1')
      let out = ''
      s.on('data', (d: Buffer) => {
        out += d.toString()
      })
      s.on('end', () => resolve(out))
      s.on('error', reject)
      s.write(
        'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      )
    })
    expect([...text.matchAll(/\r\n\r\n(\/[abc])/g)].map((m) => m[1])).toEqual(['/a', '/b', '/c'])
  })

  it('does not reuse a kept upstream connection its server has closed', async () => {
    const { port, upstream } = await rig(carry, (req, res) => res.end(req.url))
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      expect((await ask(port, { path: '/1', agent })).body.toString()).toBe('/1')
      upstream.server.closeIdleConnections()
      await new Promise((r) => setTimeout(r, 50))
      expect((await ask(port, { path: '/2', agent })).body.toString()).toBe('/2')
    } finally {
      agent.destroy()
    }
  })

  it('sends a body-less request again when a kept connection closes before answering it', async () => {
    // Each connection answers its first request and drops at the second, as
    // a server closing an idle connection just as a request arrives does.
    const seen: string[] = []
    const front = await rawRig(carry, (c) => {
      let n = 0
      c.on('data', (d: Buffer) => {
        const path = /^GET (\S+)/.exec(d.toString())?.[1] ?? '?'
        seen.push(path)
        if (n++ === 0) c.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`)
        else c.destroy()
      })
    })
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      expect((await ask(front.port, { path: '/1', agent })).body.toString()).toBe('/1')
      expect((await ask(front.port, { path: '/2', agent })).body.toString()).toBe('/2')
      expect(seen).toEqual(['/1', '/2', '/2'])
      // With a body it is not sent twice: the client hears 502.
      const post = await ask(front.port, {
        method: 'POST',
        path: '/3',
        body: Buffer.from('x'),
        agent,
      })
      expect(post.status).toBe(502)
    } finally {
      agent.destroy()
    }
  })

  it('answers 502 when the upstream cannot be reached or answers nonsense', async () => {
    const dead = await listen(() => {})
    const deadPort = dead.port
    await new Promise<void>((r) => servers.pop()!.close(() => r()))
    const forwarder = new HttpForwarder(carry)
    forwarders.push(forwarder)
    const bogus = await new Promise<number>((resolve) => {
      const s = createTcpServer((c) => {
        c.on('error', () => {})
        c.once('data', () =>
          c.end('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx'),
        )
      })
      servers.push(s)
      s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port))
    })
    const front = await listen((req, res) => {
      const to = req.url === '/dead' ? deadPort : bogus
      void forwarder.forward(req, res, '127.0.0.1', to, () => ({ status: 502, message: 'gone' }))
    })
    expect((await ask(front.port, { path: '/dead' })).status).toBe(502)
    expect((await ask(front.port, { path: '/bogus' })).status).toBe(502)
  })
})

describe('HttpForwarder with the kernel carry', () => {
  it('hands the rest of a large body to the kernel and keeps the link', async () => {
    const send = vi.spyOn(carry, 'send')
    try {
      const body = randomBytes(8 * RELAY_CHUNK + 5)
      const { port, upstreamConnections } = await rig(carry, (_, res) => {
        res.writeHead(200, { 'content-length': body.length })
        res.end(body)
      })
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      try {
        for (let i = 0; i < 2; i++) expect(sha((await ask(port, { agent })).body)).toBe(sha(body))
      } finally {
        agent.destroy()
      }
      expect(send.mock.results.filter((r) => r.value !== undefined)).toHaveLength(2)
      expect(upstreamConnections).toHaveLength(1)
    } finally {
      send.mockRestore()
    }
  })

  it('does not reuse a link whose server sent bytes past a carried body', async () => {
    const body = randomBytes(3 * RELAY_CHUNK)
    let connections = 0
    const front = await rawRig(carry, (c) => {
      connections++
      c.on('data', () => {
        c.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`)
        c.write(body)
        c.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nforge')
      })
    })
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      for (let i = 0; i < 2; i++)
        expect(sha((await ask(front.port, { agent })).body)).toBe(sha(body))
    } finally {
      agent.destroy()
    }
    expect(connections).toBe(2)
  })

  it('closes the upstream connection when the client goes mid-body', async () => {
    const upstreamClosed = new Promise<void>((resolve) => {
      void rig(carry, (_, res) => {
        res.socket!.once('close', () => resolve())
        // Far more than is ever sent: the body stalls with most of it to come.
        res.writeHead(200, { 'content-length': 64 * RELAY_CHUNK })
        res.write(Buffer.alloc(4 * RELAY_CHUNK))
      }).then(({ port }) => {
        request({ host: '127.0.0.1', port, agent: false }, (res) => {
          let got = 0
          res.on('data', (d: Buffer) => {
            got += d.length
            if (got >= 3 * RELAY_CHUNK) res.socket.destroy()
          })
        }).end()
      })
    })
    await upstreamClosed
    while (carry.size > 0) await new Promise((r) => setTimeout(r, 5))
  })
})
