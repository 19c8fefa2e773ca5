import { type AddressInfo, createServer, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { ForwardTarget } from '../forward.js'
import { RawUpstreams, type Upstream } from './upstreams.js'

const cleanup: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

/** A TCP server that counts its connections and says when one closes. */
async function server() {
  const open = new Set<Socket>()
  let accepted = 0
  const closes: (() => void)[] = []
  const srv = createServer((s) => {
    accepted++
    open.add(s)
    s.on('close', () => {
      open.delete(s)
      for (const c of closes.splice(0)) c()
    })
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy()
        srv.close(() => r())
      }),
  )
  const target: ForwardTarget = {
    host: '127.0.0.1',
    port: (srv.address() as AddressInfo).port,
    unreachable: () => ({ status: 502, message: 'unreachable' }),
  }
  return {
    target,
    open,
    accepted: () => accepted,
    nextClose: () => new Promise<void>((r) => closes.push(r)),
  }
}

function pool(): RawUpstreams {
  const p = new RawUpstreams()
  cleanup.push(() => p.close())
  return p
}

describe('RawUpstreams', () => {
  it('gives a released connection to the next request, the most recent first', async () => {
    const s = await server()
    const p = pool()
    const a = await p.take(s.target)
    const b = await p.take(s.target)
    p.release(a)
    p.release(b)
    const again = p.take(s.target)
    // An idle connection is taken at once, without a promise.
    expect(again).toBe(b)
    expect((again as Upstream).reused).toBe(true)
    expect(s.accepted()).toBe(2)
  })

  it("closes an idle connection before its server's keep-alive time runs out, and never hands it out", async () => {
    const s = await server()
    const p = pool()
    const up = await p.take(s.target)
    const closed = s.nextClose()
    const released = Date.now()
    // The server keeps idle connections 1.5 s: the pool gives this one up 1 s before.
    p.release(up, 1_500)
    await closed
    const after = Date.now() - released
    expect(after).toBeGreaterThanOrEqual(450)
    // Swept at most a second after its time.
    expect(after).toBeLessThan(2_000)
    const fresh = await p.take(s.target)
    expect(fresh).not.toBe(up)
    expect(fresh.reused).toBe(false)
  })

  it('takes an idle connection out when it closes or sends anything', async () => {
    const s = await server()
    const p = pool()
    const up = await p.take(s.target)
    p.release(up)
    const [serverSide] = [...s.open]
    // No request is outstanding: bytes from the server mean the connection is not fit to reuse.
    serverSide?.write('HTTP/1.1 200 OK\r\n\r\n')
    await new Promise<void>((r) => up.socket.once('close', () => r()))
    const next = await p.take(s.target)
    expect(next).not.toBe(up)
    expect(s.accepted()).toBe(2)
  })

  it('passes a connection’s events to the request using it, and stops once it is released', async () => {
    const s = await server()
    const p = pool()
    const up = await p.take(s.target)
    const got: string[] = []
    up.user = {
      upstreamData: (c) => got.push(c.toString()),
      upstreamEnd: () => got.push('end'),
      upstreamGone: () => got.push('gone'),
    }
    const [serverSide] = [...s.open]
    serverSide?.write('hello')
    await new Promise((r) => setTimeout(r, 50))
    expect(got).toEqual(['hello'])
    p.release(up)
    serverSide?.end()
    await new Promise<void>((r) => up.socket.once('close', () => r()))
    expect(got).toEqual(['hello'])
  })
})
