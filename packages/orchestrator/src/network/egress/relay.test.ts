import { createHash, randomBytes } from 'node:crypto'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { dialRelay, freeBuffers, joinRelay, RELAY_CHUNK } from './relay.js'

const servers: Server[] = []
const accepted: Socket[] = []
afterEach(async () => {
  for (const s of accepted.splice(0)) s.destroy()
  for (const s of servers.splice(0)) {
    await new Promise<void>((r) => s.close(() => r()))
  }
})

async function serve(onConnection: (s: Socket) => void): Promise<number> {
  const server = createServer((s) => {
    accepted.push(s)
    s.on('error', () => s.destroy())
    onConnection(s)
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return (server.address() as AddressInfo).port
}

/** A relay in front of `upstreamPort`, as the egress proxy makes one per connection. */
function relayTo(upstreamPort: number): Promise<number> {
  return serve(async (client) => {
    try {
      joinRelay(client, await dialRelay('127.0.0.1', upstreamPort, client))
    } catch {
      client.destroy()
    }
  })
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

describe('egress relay', () => {
  it('carries a download byte for byte to a reader that keeps pausing, and ends it', async () => {
    const body = randomBytes(8 * RELAY_CHUNK + 777)
    const port = await relayTo(await serve((s) => s.end(body)))
    const hash = createHash('sha256')
    let got = 0
    await new Promise<void>((resolve, reject) => {
      const c = connect(port, '127.0.0.1')
      c.on('data', (d: Buffer) => {
        hash.update(d)
        got += d.length
        // A slow reader: the relay's writes queue, so its reads must wait.
        c.pause()
        setTimeout(() => c.resume(), 2)
      })
      c.on('end', () => resolve())
      c.on('error', reject)
    })
    expect(got).toBe(body.length)
    expect(hash.digest('hex')).toBe(sha(body))
    // The relay's buffer goes back to the pool once its socket has closed.
    for (let i = 0; i < 100 && freeBuffers() === 0; i++) await new Promise((r) => setTimeout(r, 10))
    expect(freeBuffers()).toBeGreaterThan(0)
  })

  it('carries an upload byte for byte, and a client gone closes the upstream', async () => {
    const body = randomBytes(3 * RELAY_CHUNK + 5)
    const received: Buffer[] = []
    const upstreamClosed = new Promise<void>((resolve) => {
      void serve((s) => {
        s.on('data', (d: Buffer) => received.push(d))
        s.on('close', () => resolve())
      }).then(async (upstreamPort) => {
        const port = await relayTo(upstreamPort)
        const c = connect(port, '127.0.0.1')
        c.write(body, () => setTimeout(() => c.destroy(), 50))
      })
    })
    await upstreamClosed
    expect(sha(Buffer.concat(received))).toBe(sha(body))
  })

  it('rejects when the upstream refuses', async () => {
    const closed = await serve(() => {})
    const port = (servers.at(-1)!.address() as AddressInfo).port
    await new Promise<void>((r) => servers.pop()!.close(() => r()))
    expect(port).toBe(closed)
    const to = connect(await serve(() => {}), '127.0.0.1')
    await expect(dialRelay('127.0.0.1', closed, to)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    to.destroy()
  })
})
