import { createHash, randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type Cleanup, listenForTest } from '../testing/listen.js'
import { type CarryEnd, type NativeCarry, nativeCarry } from './native-carry.js'

const cleanup: Cleanup = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
  expect(carry.size).toBe(0)
})

let carry: NativeCarry
beforeAll(() => {
  const loaded = nativeCarry()
  if (!loaded) throw new Error('native/build/Release/carry.node is not built (npm run build)')
  carry = loaded
})

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const fds = () => readdirSync('/proc/self/fd').length
const tick = (ms = 1) => new Promise((r) => setTimeout(r, ms))

/** A loopback connection: the socket `make` dials, and the one the server accepted. */
async function connection(make: (port: number) => Socket) {
  const accepted: Socket[] = []
  const server: Server = createServer((s) => accepted.push(s))
  const port = await listenForTest(server, cleanup)
  const near = make(port)
  await new Promise((r) => near.once('connect', r))
  while (accepted.length === 0) await tick()
  const far = accepted[0]!
  for (const s of [near, far]) {
    s.on('error', () => {})
    cleanup.push(() => void s.destroy())
  }
  return { near, far }
}

/**
 * The two ends a proxy holds: `from`, read as the proxies' upstream sockets
 * are (`onread`, each read copied to `reads`, then Node's reading stopped
 * until `from.resume()`), with `server` writing into it; and `to`, a plain
 * socket whose far end is `client`.
 */
async function ends() {
  const reads: Buffer[] = []
  const up = await connection((port) =>
    connect({
      port,
      host: '127.0.0.1',
      onread: {
        buffer: Buffer.alloc(64 << 10),
        callback: (n, buf) => {
          reads.push(Buffer.from(buf.subarray(0, n)))
          return false
        },
      },
    }),
  )
  const down = await connection((port) => connect(port, '127.0.0.1'))
  return { server: up.far, from: up.near, reads, to: down.far, client: down.near }
}

/** What `s` reads from now on; `until(n)` waits for n bytes of it. */
function collect(s: Socket) {
  const parts: Buffer[] = []
  let got = 0
  s.on('data', (d: Buffer) => {
    parts.push(d)
    got += d.length
  })
  return {
    bytes: () => Buffer.concat(parts),
    until: async (n: number) => {
      while (got < n) await tick(2)
    },
  }
}

function ended() {
  let done!: (e: CarryEnd) => void
  const promise = new Promise<CarryEnd>((r) => (done = r))
  return { promise, done }
}

describe('NativeCarry.send', () => {
  it('carries exactly the length, then both sockets are Node’s again', async () => {
    const { server, from, reads, to, client } = await ends()
    const body = randomBytes((4 << 20) + 3)
    const atClient = collect(client)
    server.write(Buffer.concat([body, Buffer.from('after')]))
    // The first read goes on as the proxies write it; its callback stopped Node's reading.
    while (!reads.length) await tick()
    const first = reads.shift()!
    await new Promise((r) => to.write(first, r))
    const end = ended()
    const rest = body.length - first.length
    expect(carry.send(from, to, rest, 0, end.done)).toBeDefined()
    const e = await end.promise
    expect(e).toMatchObject({ carried: rest, errno: 0 })
    // What came past the length waits in `from` (counted by the kernel, at the end).
    expect(e.extra).toBeLessThanOrEqual(5)
    to.write('still mine')
    await atClient.until(body.length + 10)
    expect(sha(atClient.bytes().subarray(0, body.length))).toBe(sha(body))
    expect(atClient.bytes().subarray(body.length).toString()).toBe('still mine')
    from.resume()
    while (Buffer.concat(reads).length < 5) await tick()
    expect(Buffer.concat(reads).toString()).toBe('after')
  })

  it('does not start from a socket Node is reading, and changes nothing', async () => {
    const { server, from, reads, to } = await ends()
    // Node's first read is still to come: it is reading.
    expect(carry.send(from, to, 10, 0, () => {})).toBeUndefined()
    server.write('x')
    while (!reads.length) await tick()
    expect(reads.shift()!.toString()).toBe('x')
  })

  it('tells EPIPE with what it carried when the source ends first', async () => {
    const { server, from, to, client } = await ends()
    from.pause()
    const end = ended()
    expect(carry.send(from, to, 1000, 0, end.done)).toBeDefined()
    client.on('data', () => {})
    server.end('only this')
    expect(await end.promise).toMatchObject({ carried: 9, errno: 32 /* EPIPE */ })
  })

  it('tells the error when the destination fails', async () => {
    const { server, from, to, client } = await ends()
    from.pause()
    const end = ended()
    carry.send(from, to, 64 << 20, 0, end.done)
    client.resetAndDestroy()
    // Writes to the reset connection fail.
    for (let i = 0; i < 8; i++) server.write(Buffer.alloc(1 << 20))
    expect((await end.promise).errno).not.toBe(0)
  })

  it('ends with ETIMEDOUT when nothing moved for its idle time', async () => {
    const { server, from, to, client } = await ends()
    from.pause()
    const end = ended()
    const t0 = Date.now()
    carry.send(from, to, 1000, 150, end.done)
    client.on('data', () => {})
    server.write('stall')
    expect(await end.promise).toMatchObject({ carried: 5, errno: 110 /* ETIMEDOUT */ })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140)
  })

  it('holds its pipe only once bytes come, and every descriptor until it ends or is cancelled', async () => {
    const { server, from, to, client } = await ends()
    from.pause()
    const before = fds()
    let told = false
    const c = carry.send(from, to, 1 << 20, 0, () => (told = true))!
    expect(fds()).toBe(before + 2) // its duplicates of the two sockets
    const atClient = collect(client)
    server.write('x')
    await atClient.until(1)
    expect(fds()).toBe(before + 4) // and one pipe
    c.cancel()
    c.cancel()
    await tick(20)
    expect(fds()).toBe(before)
    expect(told).toBe(false)
  })
})
