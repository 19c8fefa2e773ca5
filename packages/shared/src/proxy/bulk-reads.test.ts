import { createHash, randomBytes } from 'node:crypto'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { bulkReads } from './bulk-reads.js'

const servers: Server[] = []
const sockets: Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r))
})

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** A loopback server that writes `data` to its first client and ends. */
async function source(data: Buffer): Promise<number> {
  const server = createServer((s) => {
    sockets.push(s)
    s.on('error', () => {})
    s.end(data)
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return (server.address() as AddressInfo).port
}

function dial(port: number, onread: ReturnType<typeof bulkReads>['onread']): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, onread })
    sockets.push(s)
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

describe('bulkReads', () => {
  it('hands out chunks that stay intact while unreleased (no slab is read into again)', async () => {
    const data = randomBytes(24 << 20)
    const reads = bulkReads()
    const socket = await dial(await source(data), reads.onread)
    // Every chunk is kept as given (no copy) and never released: a reused
    // region would show as a wrong hash.
    const held: Buffer[] = []
    const ended = new Promise<void>((r) => socket.once('end', r))
    reads.start(socket, (chunk) => {
      held.push(chunk)
      return true
    })
    await ended
    expect(held.reduce((n, c) => n + c.length, 0)).toBe(data.length)
    expect(sha(Buffer.concat(held))).toBe(sha(data))
  })

  it('keeps what arrives before start, and reads nothing more until then', async () => {
    const data = randomBytes(8 << 20)
    const reads = bulkReads()
    const socket = await dial(await source(data), reads.onread)
    // The server has written everything it can; the socket read once and paused.
    await new Promise((r) => setTimeout(r, 200))
    const got: Buffer[] = []
    const ended = new Promise<void>((r) => socket.once('end', r))
    reads.start(socket, (chunk) => {
      got.push(chunk)
      return true
    })
    await ended
    expect(sha(Buffer.concat(got))).toBe(sha(data))
  })

  it('reads into a released slab again, never into an unreleased chunk', async () => {
    const data = randomBytes(48 << 20)
    const reads = bulkReads()
    const socket = await dial(await source(data), reads.onread)
    const hash = createHash('sha256')
    // Bytes read into each slab: one read into again holds more than its size.
    const slabs = new Map<ArrayBufferLike, number>()
    let size = 0
    let outstanding = 0
    const ended = new Promise<void>((r) => socket.once('end', r))
    // As a writer would: each chunk is consumed on a later turn, then
    // released; more than a few unwritten pause the socket.
    reads.start(socket, (chunk, release) => {
      slabs.set(chunk.buffer, (slabs.get(chunk.buffer) ?? 0) + chunk.length)
      outstanding++
      setImmediate(() => {
        hash.update(chunk)
        size += chunk.length
        release()
        if (--outstanding === 0) socket.resume()
      })
      return outstanding < 3
    })
    await ended
    await new Promise((r) => setImmediate(r))
    expect(size).toBe(data.length)
    expect(hash.digest('hex')).toBe(sha(data))
    // 1 MiB slabs went round, not one per MiB moved. How many were needed
    // depends on how often the reader caught up with the peer (each time,
    // the spares go), so the bound is loose; that one was filled again is not.
    const large = [...slabs].filter(([buf]) => buf.byteLength >= 1 << 20)
    expect(Math.max(...large.map(([, n]) => n))).toBeGreaterThan(1 << 20)
    expect(large.length).toBeLessThan(24)
  })

  it('reads large while the peer is ahead, and goes back to a small slab when it is not', async () => {
    const server = createServer((s) => {
      sockets.push(s)
      s.on('error', () => {})
      s.write(randomBytes(16 << 20))
      // Then a trickle, well after the burst was read.
      setTimeout(() => s.write('a'), 300)
      setTimeout(() => s.end('b'), 400)
    })
    servers.push(server)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const reads = bulkReads()
    const socket = await dial((server.address() as AddressInfo).port, reads.onread)
    const chunks: Buffer[] = []
    const ended = new Promise<void>((r) => socket.once('end', r))
    reads.start(socket, (chunk, release) => {
      chunks.push(chunk)
      release()
      return true
    })
    await ended
    expect(Math.max(...chunks.map((c) => c.length))).toBeGreaterThan(64 << 10)
    const last = chunks.at(-1)!
    expect(last.toString()).toBe('b')
    expect(last.buffer.byteLength).toBe(16 << 10)
  })

  it('pauses on a false from the sink until resume, then delivers the rest byte-exact', async () => {
    const data = randomBytes(32 << 20)
    const reads = bulkReads()
    const socket = await dial(await source(data), reads.onread)
    const got: Buffer[] = []
    let size = 0
    const ended = new Promise<void>((r) => socket.once('end', r))
    let paused = true
    reads.start(socket, (chunk) => {
      got.push(chunk)
      size += chunk.length
      // Once let go, each chunk resumes the socket on the next turn (as a drained writer would).
      if (!paused) setImmediate(() => socket.resume())
      return false
    })
    // One read at most while paused, however long the pause: the rest waits in the kernel.
    await new Promise((r) => setTimeout(r, 300))
    expect(got.length).toBe(1)
    expect(size).toBeLessThan(data.length)
    paused = false
    socket.resume()
    await ended
    expect(size).toBe(data.length)
    expect(sha(Buffer.concat(got))).toBe(sha(data))
  })
})
