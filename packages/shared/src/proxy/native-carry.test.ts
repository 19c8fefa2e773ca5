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

/**
 * Two connected pairs of loopback sockets: `a` and `b` are the relay's
 * ends (as a proxy holds them), `peerA` and `peerB` the far ends.
 */
async function pairs() {
  const accepted: Socket[] = []
  // Half-open both ways, as the proxies' far ends may be.
  const server: Server = createServer({ allowHalfOpen: true }, (s) => accepted.push(s))
  const port = await listenForTest(server, cleanup)
  const dial = async () => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    await new Promise((r) => s.once('connect', r))
    while (accepted.length === 0) await new Promise((r) => setTimeout(r, 1))
    return [s, accepted.shift()!] as const
  }
  const [peerA, a] = await dial()
  const [b, peerB] = await dial()
  for (const s of [peerA, a, b, peerB]) {
    s.on('error', () => {})
    cleanup.push(() => void s.destroy())
  }
  return { peerA, a, b, peerB }
}

/** Everything `s` reads until it ends. */
function readAll(s: Socket): Promise<Buffer> {
  const parts: Buffer[] = []
  s.on('data', (d: Buffer) => parts.push(d))
  return new Promise((resolve) => s.once('end', () => resolve(Buffer.concat(parts))))
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
      while (got < n) await new Promise((r) => setTimeout(r, 2))
    },
  }
}

/**
 * A socket that reads as the proxies' upstream sockets do (`onread`, each
 * read copied to `reads` and then stopping Node's reading until `resume`),
 * and its far end.
 */
async function upstream() {
  const accepted: Socket[] = []
  const server: Server = createServer({ allowHalfOpen: true }, (s) => accepted.push(s))
  const port = await listenForTest(server, cleanup)
  const reads: Buffer[] = []
  const from = connect({
    port,
    host: '127.0.0.1',
    onread: {
      buffer: Buffer.alloc(64 << 10),
      callback: (n, buf) => {
        reads.push(Buffer.from(buf.subarray(0, n)))
        return false
      },
    },
  })
  await new Promise((r) => from.once('connect', r))
  while (accepted.length === 0) await new Promise((r) => setTimeout(r, 1))
  const peer = accepted[0]!
  for (const s of [from, peer]) {
    s.on('error', () => {})
    cleanup.push(() => void s.destroy())
  }
  return { peer, from, reads }
}

const ended = () => {
  let resolve!: (e: CarryEnd) => void
  const promise = new Promise<CarryEnd>((r) => (resolve = r))
  return { promise, done: resolve }
}

describe('NativeCarry.join', () => {
  it('carries both ways and passes each end on as a half-close', async () => {
    const { peerA, a, b, peerB } = await pairs()
    const up = randomBytes(5 << 20)
    const down = randomBytes((3 << 20) + 7)
    const end = ended()
    expect(carry.join(a, b, 0, end.done)).toBeDefined()
    expect(a.destroyed && b.destroyed).toBe(true)
    const atB = readAll(peerB)
    const atA = readAll(peerA)
    peerA.end(up)
    // peerA has finished sending; peerB still answers after seeing that end.
    expect(sha(await atB)).toBe(sha(up))
    peerB.end(down)
    expect(sha(await atA)).toBe(sha(down))
    expect(await end.promise).toEqual({ carried: up.length, extra: down.length, errno: 0 })
  })

  it('holds no more descriptors than the sockets it took until bytes flow', async () => {
    const { peerA, a, b, peerB } = await pairs()
    const fds = () => readdirSync('/proc/self/fd').length
    const before = fds()
    const c = carry.join(a, b, 0, () => {})!
    // Node's two sockets close as the carry's duplicates open.
    await new Promise((r) => setTimeout(r, 20))
    expect(fds()).toBe(before)
    const atB = collect(peerB)
    peerA.write('x')
    await atB.until(1)
    expect(fds()).toBe(before + 2) // one pipe, for the way that carried
    c.cancel()
  })

  it('ends with the error when a side fails, and closes both', async () => {
    const { peerA, a, b, peerB } = await pairs()
    const end = ended()
    carry.join(a, b, 0, end.done)
    const closed = new Promise((r) => peerA.once('end', r))
    peerA.on('data', () => {})
    peerB.resetAndDestroy()
    expect((await end.promise).errno).not.toBe(0)
    await closed
  })

  it('does not start while a socket holds unread bytes, and changes nothing', async () => {
    const { peerA, a, b } = await pairs()
    a.pause()
    peerA.write('early')
    while (a.readableLength === 0) await new Promise((r) => setTimeout(r, 1))
    expect(carry.join(a, b, 0, () => {})).toBeUndefined()
    expect(a.destroyed || b.destroyed).toBe(false)
    expect(a.read()?.toString()).toBe('early')
  })

  it('stops when cancelled, without telling, and the connections close', async () => {
    const { peerA, a, b, peerB } = await pairs()
    let told = false
    const c = carry.join(a, b, 0, () => (told = true))!
    const closedA = new Promise((r) => peerA.once('end', r))
    const closedB = new Promise((r) => peerB.once('end', r))
    peerA.resume()
    peerB.resume()
    c.cancel()
    c.cancel()
    await Promise.all([closedA, closedB])
    expect(told).toBe(false)
  })

  it('ends a carry where nothing moved for its idle time', async () => {
    const { peerA, a, b, peerB } = await pairs()
    const end = ended()
    const t0 = Date.now()
    carry.join(a, b, 150, end.done)
    peerA.write('x')
    peerB.on('data', () => {})
    peerA.on('data', () => {})
    const e = await end.promise
    expect(e).toMatchObject({ carried: 1, errno: 110 /* ETIMEDOUT */ })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140)
  })
})

describe('NativeCarry.send', () => {
  it('carries exactly the length, then both sockets are Node’s again', async () => {
    const { peer, from, reads } = await upstream()
    const { b, peerB } = await pairs()
    const body = randomBytes((4 << 20) + 3)
    const atB = collect(peerB)
    peer.write(Buffer.concat([body, Buffer.from('after')]))
    // The first read goes on as the proxies write it; its callback stopped Node's reading.
    while (!reads.length) await new Promise((r) => setTimeout(r, 1))
    const first = reads.shift()!
    await new Promise((r) => b.write(first, r))
    const end = ended()
    const rest = body.length - first.length
    expect(carry.send(from, b, rest, 0, end.done)).toBeDefined()
    const e = await end.promise
    expect(e).toMatchObject({ carried: rest, errno: 0 })
    // What came past the length waits in `from` (counted by the kernel, at the end).
    expect(e.extra).toBeLessThanOrEqual(5)
    b.write('still mine')
    await atB.until(body.length + 10)
    expect(sha(atB.bytes().subarray(0, body.length))).toBe(sha(body))
    expect(atB.bytes().subarray(body.length).toString()).toBe('still mine')
    from.resume()
    while (Buffer.concat(reads).length < 5) await new Promise((r) => setTimeout(r, 1))
    expect(Buffer.concat(reads).toString()).toBe('after')
  })

  it('tells EPIPE with what it carried when the source ends first', async () => {
    const { peer, from } = await upstream()
    const { b, peerB } = await pairs()
    const end = ended()
    expect(carry.send(from, b, 1000, 0, end.done)).toBeUndefined() // Node is reading it
    from.pause()
    expect(carry.send(from, b, 1000, 0, end.done)).toBeDefined()
    peerB.on('data', () => {})
    peer.end('only this')
    expect(await end.promise).toMatchObject({ carried: 9, errno: 32 /* EPIPE */ })
  })
})
