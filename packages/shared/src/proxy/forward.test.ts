import { createHash, randomBytes } from 'node:crypto'
import { createServer, request, type Server } from 'node:http'
import {
  type AddressInfo,
  connect,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createForwarder } from './forward.js'

const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }
})

async function listen(server: Server): Promise<number> {
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return (server.address() as AddressInfo).port
}

describe('createForwarder', () => {
  it.each([
    ['counted', true],
    ['uncounted', false],
  ])('closes the upstream stream when the client leaves mid-answer (%s)', async (_, counted) => {
    // An upstream that streams until its request is closed.
    let upstreamClosed!: () => void
    const closed = new Promise<void>((r) => {
      upstreamClosed = r
    })
    const upstreamPort = await listen(
      createServer((req, res) => {
        res.writeHead(200)
        const chunk = Buffer.alloc(64 << 10)
        const pump = () => {
          while (res.write(chunk)) {}
        }
        res.on('drain', pump)
        res.on('close', upstreamClosed)
        req.resume()
        pump()
      }),
    )
    let countedBytes = 0
    const forwarder = createForwarder(async () => ({
      target: {
        host: '127.0.0.1',
        port: upstreamPort,
        unreachable: () => ({ status: 502, message: 'unreachable' }),
        onTraffic: counted
          ? (n) => {
              countedBytes += n
            }
          : undefined,
      },
    }))
    const proxyPort = await listen(createServer((req, res) => void forwarder.onRequest(req, res)))
    try {
      await new Promise<void>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: proxyPort, method: 'POST', path: '/' },
          (res) => {
            res.once('data', () => {
              // Leave without reading the rest.
              req.destroy()
              resolve()
            })
          },
        )
        req.on('error', () => {})
        req.end('x')
        setTimeout(() => reject(new Error('no answer')), 5000).unref()
      })
      await Promise.race([
        closed,
        new Promise((_, reject) =>
          setTimeout(
            () => reject(new Error('upstream still open 5 s after the client left')),
            5000,
          ).unref(),
        ),
      ])
      if (counted) expect(countedBytes).toBeGreaterThan(0)
    } finally {
      await forwarder.close()
    }
  })
})

/**
 * An upstream that answers an upgrade with 101, then runs `after` on its
 * socket with what followed the request's head.
 */
async function upgradeUpstream(after: (s: Socket, rest: Buffer) => void): Promise<number> {
  const server = createNetServer((s) => {
    netSockets.push(s)
    s.on('error', () => {})
    let head = Buffer.alloc(0)
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      s.off('data', onData)
      s.pause()
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n')
      after(s, head.subarray(end + 4))
    }
    s.on('data', onData)
  })
  netServers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return (server.address() as AddressInfo).port
}

/** A proxy whose upgrades go to `upstreamPort`; its port and forwarder. */
async function upgradeProxy(upstreamPort: number) {
  const forwarder = createForwarder(async () => ({
    target: {
      host: '127.0.0.1',
      port: upstreamPort,
      unreachable: () => ({ status: 502, message: 'unreachable' }),
    },
  }))
  const server = createServer()
  server.on('upgrade', (req, socket, head) => void forwarder.onUpgrade(req, socket, head))
  return { port: await listen(server), forwarder }
}

/** A client's upgraded connection through the proxy, and the bytes after the 101's head. */
function upgradeClient(port: number): Promise<{ socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    netSockets.push(socket)
    socket.once('error', reject)
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n')
    let head = Buffer.alloc(0)
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      socket.off('data', onData)
      socket.pause()
      expect(head.subarray(0, 12).toString()).toBe('HTTP/1.1 101')
      resolve({ socket, rest: head.subarray(end + 4) })
    }
    socket.on('data', onData)
  })
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const netServers: NetServer[] = []
const netSockets: Socket[] = []
afterEach(async () => {
  for (const s of netSockets.splice(0)) s.destroy()
  for (const s of netServers.splice(0)) await new Promise((r) => s.close(r))
})

describe('createForwarder upgrades', () => {
  it('delivers all an upstream sent before it closed to a slow client, byte-exact', async () => {
    const data = randomBytes(32 << 20)
    // The upstream writes everything and closes at once.
    const { port, forwarder } = await upgradeProxy(await upgradeUpstream((s) => s.end(data)))
    try {
      const { socket, rest } = await upgradeClient(port)
      const got: Buffer[] = [rest]
      let size = rest.length
      const ended = new Promise<void>((resolve, reject) => {
        socket.once('end', resolve)
        socket.once('close', () => reject(new Error(`cut after ${size} bytes`)))
      })
      // Reads slower than the upstream writes: a pause every MiB.
      let next = 1 << 20
      socket.on('data', (d: Buffer) => {
        got.push(d)
        size += d.length
        if (size < next) return
        next += 1 << 20
        socket.pause()
        setTimeout(() => socket.resume(), 5)
      })
      socket.resume()
      await ended
      expect(size).toBe(data.length)
      expect(sha(Buffer.concat(got))).toBe(sha(data))
    } finally {
      await forwarder.close()
    }
  })

  it('carries a client’s bytes to the upstream byte-exact', async () => {
    const data = randomBytes(16 << 20)
    const upstreamPort = await upgradeUpstream((s, rest) => {
      const hash = createHash('sha256').update(rest)
      let size = rest.length
      s.on('data', (d: Buffer) => {
        hash.update(d)
        size += d.length
        if (size === data.length) s.end(hash.digest('hex'))
      })
      s.resume()
    })
    const { port, forwarder } = await upgradeProxy(upstreamPort)
    try {
      const { socket, rest } = await upgradeClient(port)
      let answer = rest.toString()
      const answered = new Promise<void>((r) => socket.once('end', r))
      socket.on('data', (d: Buffer) => (answer += d.toString()))
      socket.resume()
      socket.write(data)
      await answered
      expect(answer).toBe(sha(data))
    } finally {
      await forwarder.close()
    }
  })

  it('holds an upstream back while its client reads nothing', async () => {
    const chunk = Buffer.alloc(1 << 20, 7)
    let accepted = 0
    const upstreamPort = await upgradeUpstream((s) => {
      // Up to 256 MiB, each MiB counted once the socket took it.
      const pump = () => {
        while (accepted < 256 << 20) {
          const more = s.write(chunk)
          accepted += chunk.length
          if (!more) return void s.once('drain', pump)
        }
      }
      pump()
    })
    const { port, forwarder } = await upgradeProxy(upstreamPort)
    try {
      await upgradeClient(port) // and never read
      // Until the upstream stops making progress (at most ~10 s).
      let last = -1
      for (let i = 0; i < 100 && accepted !== last; i++) {
        last = accepted
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(accepted).toBe(last)
      // What the kernel's socket buffers and the proxy's one read hold, not the 256 MiB offered.
      expect(accepted).toBeLessThan(64 << 20)
    } finally {
      await forwarder.close()
    }
  })
})
