import { createHash, randomBytes } from 'node:crypto'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { adoptOnread } from './accepted-reads.js'
import { bulkReads } from './bulk-reads.js'

const servers: Server[] = []
const sockets: Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r))
})

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** A loopback connection: the client's socket and the server's accepted one. */
async function pair(): Promise<{ client: Socket; accepted: Socket }> {
  let take!: (s: Socket) => void
  const accepted = new Promise<Socket>((r) => (take = r))
  const server = createServer((s) => {
    sockets.push(s)
    take(s)
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  sockets.push(client)
  return { client, accepted: await accepted }
}

/** Everything `socket` delivers through `reads` until its end, and its largest chunk. */
function collect(
  socket: Socket,
  reads: ReturnType<typeof bulkReads>,
): Promise<{ chunks: Buffer[]; largest: number }> {
  const chunks: Buffer[] = []
  let largest = 0
  const ended = new Promise<void>((r) => socket.once('end', r))
  reads.start(socket, (chunk, release) => {
    chunks.push(Buffer.from(chunk))
    largest = Math.max(largest, chunk.length)
    release()
    return true
  })
  return ended.then(() => ({ chunks, largest }))
}

describe('adoptOnread', () => {
  it('reads an accepted socket in large chunks, byte-exact', async () => {
    const { client, accepted } = await pair()
    const reads = bulkReads()
    expect(adoptOnread(accepted, reads.onread)).toEqual([])
    const got = collect(accepted, reads)
    const data = randomBytes(32 << 20)
    client.end(data)
    const { chunks, largest } = await got
    expect(sha(Buffer.concat(chunks))).toBe(sha(data))
    // Node's own reads of an accepted socket are at most 64 KiB.
    expect(largest).toBeGreaterThan(64 << 10)
  })

  it('hands back what was read before, which comes first', async () => {
    const { client, accepted } = await pair()
    client.write('before ')
    // Read by Node into the socket's buffer: no one takes it yet.
    await new Promise<void>((r) => accepted.once('readable', () => r()))
    const reads = bulkReads()
    const earlier = adoptOnread(accepted, reads.onread)
    expect(Buffer.concat(earlier ?? []).toString()).toBe('before ')
    const got = collect(accepted, reads)
    client.end('after')
    const { chunks } = await got
    expect(Buffer.concat(chunks).toString()).toBe('after')
  })

  it('pauses the socket while the sink is full, and resumes it', async () => {
    const { client, accepted } = await pair()
    const reads = bulkReads()
    adoptOnread(accepted, reads.onread)
    const data = randomBytes(16 << 20)
    let size = 0
    let pauses = 0
    const ended = new Promise<void>((r) => accepted.once('end', r))
    reads.start(accepted, (chunk, release) => {
      size += chunk.length
      release()
      pauses++
      setTimeout(() => accepted.resume(), 1)
      return false
    })
    client.end(data)
    await ended
    expect(size).toBe(data.length)
    expect(pauses).toBeGreaterThan(1)
  })

  it('leaves sockets it cannot read that way alone', async () => {
    const { client, accepted } = await pair()
    const tls = new TLSSocket(accepted)
    tls.on('error', () => {})
    sockets.push(tls)
    expect(adoptOnread(tls, bulkReads().onread)).toBeUndefined()
    // One already reading through `onread`.
    const reads = bulkReads()
    const dialed = connect({ port: (accepted.address() as AddressInfo).port, onread: reads.onread })
    sockets.push(dialed)
    expect(adoptOnread(dialed, bulkReads().onread)).toBeUndefined()
    // One whose bytes something else takes.
    const { accepted: listened } = await pair()
    listened.on('data', () => {})
    expect(adoptOnread(listened, bulkReads().onread)).toBeUndefined()
    client.destroy()
  })
})
