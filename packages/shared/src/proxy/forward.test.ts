import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
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
