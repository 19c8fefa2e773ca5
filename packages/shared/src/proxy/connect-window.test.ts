import { createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  type ConnectSlot,
  ConnectWindow,
  ConnectWindowError,
  type ConnectWindowOptions,
  holdUntilAnswered,
} from './connect-window.js'
import { ConnectWindows } from './connect-windows.js'

const OPTS: ConnectWindowOptions = {
  initial: 2,
  max: 8,
  queueLimit: 3,
  queueTimeoutMs: 1000,
  holdMs: 50,
  ceilingMs: 30_000,
}

/** Starts `n` acquires; says which have been granted so far. */
function acquireMany(w: ConnectWindow, n: number) {
  const granted: ConnectSlot[] = []
  const failed: Error[] = []
  for (let i = 0; i < n; i++)
    w.acquire().then(
      (s) => granted.push(s),
      (e: Error) => failed.push(e),
    )
  return { granted, failed }
}

const tick = () => new Promise((r) => setImmediate(r))

describe('ConnectWindow', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('grants up to its window and queues the rest in order', async () => {
    const w = new ConnectWindow(OPTS)
    const { granted } = acquireMany(w, 4)
    await tick()
    expect(granted).toHaveLength(2)
    expect(w.pending).toEqual({ inFlight: 2, waiting: 2 })
    granted[0]!.free()
    await tick()
    expect(granted).toHaveLength(3)
    expect(w.size).toBe(2)
  })

  it('widens by one per answer while full (slow start), up to its max', async () => {
    const w = new ConnectWindow(OPTS)
    const { granted } = acquireMany(w, 3)
    await tick()
    granted[0]!.answered()
    await tick()
    expect(w.size).toBe(3)
    // The window is not full now (2 of 3 after the next answer): no growth without demand.
    granted[1]!.answered()
    granted[2]!.answered()
    expect(w.size).toBe(4)
    for (let i = 0; i < 40; i++) {
      const { granted: g } = acquireMany(w, w.size)
      await tick()
      for (const s of g) s.answered()
    }
    expect(w.size).toBe(8)
  })

  it('does not widen for a trickle that never fills it', async () => {
    const w = new ConnectWindow(OPTS)
    for (let i = 0; i < 20; i++) (await w.acquire()).answered()
    expect(w.size).toBe(2)
  })

  it('halves on a dropped connect, once for the connects of one round', async () => {
    const w = new ConnectWindow({ ...OPTS, initial: 8 })
    const { granted } = acquireMany(w, 8)
    await tick()
    granted[0]!.dropped()
    expect(w.size).toBe(4)
    // Granted before the decrease: the same loss, no further halving.
    granted[1]!.dropped()
    granted[2]!.dropped()
    expect(w.size).toBe(4)
    for (const s of granted.slice(3)) s.free()
    const next = await w.acquire()
    next.dropped()
    expect(w.size).toBe(2)
    const last = await w.acquire()
    last.dropped()
    const least = await w.acquire()
    least.dropped()
    expect(w.size).toBe(1)
  })

  it('stays below the connections that overflowed the server until the cap expires', async () => {
    vi.useFakeTimers()
    const w = new ConnectWindow({
      ...OPTS,
      initial: 4,
      max: 64,
      queueLimit: 1000,
      ceilingMs: 30_000,
    })
    /** `n` connections in a burst (more than the window: some wait), each answered. */
    const burst = async (n: number) => {
      const { granted } = acquireMany(w, n)
      for (let done = 0; done < n; ) {
        await vi.advanceTimersByTimeAsync(0)
        const now = granted.length
        for (const s of granted.slice(done, now)) s.answered()
        done = now
      }
    }
    await burst(5)
    const before = w.size
    expect(before).toBeGreaterThan(4)
    const { granted } = acquireMany(w, before + 2)
    await vi.advanceTimersByTimeAsync(0)
    expect(granted).toHaveLength(before)
    // The last connection in flight is dropped: the queue held the others.
    granted[before - 1]!.dropped()
    expect(w.size).toBe(Math.floor(before / 2))
    for (const s of granted.slice(0, before - 1)) s.free()
    await vi.advanceTimersByTimeAsync(0)
    for (const s of granted.slice(before)) s.free()
    // Answers widen it again, but not past those others while the cap holds…
    await burst(200)
    expect(w.size).toBe(before - 1)
    // …and past them once it has expired.
    await vi.advanceTimersByTimeAsync(30_000)
    await burst(200)
    expect(w.size).toBeGreaterThan(before)
  })

  it('refuses at once beyond its queue limit, and a waiter gives up after the queue timeout', async () => {
    vi.useFakeTimers()
    const w = new ConnectWindow(OPTS, 'port 8000 of sandbox s1')
    const { granted, failed } = acquireMany(w, 6)
    await vi.advanceTimersByTimeAsync(0)
    expect(granted).toHaveLength(2)
    expect(failed).toHaveLength(1)
    expect(failed[0]).toBeInstanceOf(ConnectWindowError)
    expect((failed[0] as ConnectWindowError).reason).toBe('full')
    expect(failed[0]!.message).toMatch(/port 8000 of sandbox s1 has 3 connections waiting/)
    await vi.advanceTimersByTimeAsync(1000)
    expect(failed.map((e) => (e as ConnectWindowError).reason)).toEqual([
      'full',
      'timeout',
      'timeout',
      'timeout',
    ])
    expect(w.pending).toEqual({ inFlight: 2, waiting: 0 })
    // Places freed after the waiters left go to no one; the window is whole again.
    granted[0]!.free()
    granted[1]!.free()
    expect(w.pending).toEqual({ inFlight: 0, waiting: 0 })
  })

  it('puts a connection trying again ahead of those that have not tried yet', async () => {
    const w = new ConnectWindow(OPTS)
    const [a, b] = [await w.acquire(), await w.acquire()]
    const order: string[] = []
    void w.acquire().then((s) => {
      order.push('new')
      s.free()
    })
    void w.acquire(true).then((s) => {
      order.push('retry')
      s.free()
    })
    a.free()
    await tick()
    b.free()
    await tick()
    expect(order).toEqual(['retry', 'new'])
  })

  it('ends a place once, whichever end comes first', async () => {
    const w = new ConnectWindow(OPTS)
    const s = await w.acquire()
    s.answered()
    s.dropped()
    s.free()
    expect(w.pending.inFlight).toBe(0)
    expect(w.size).toBe(2)
  })

  it('fails its waiters and later acquires once closed', async () => {
    const w = new ConnectWindow(OPTS)
    const { failed } = acquireMany(w, 3)
    await tick()
    w.close()
    await tick()
    expect((failed[0] as ConnectWindowError).reason).toBe('closed')
    await expect(w.acquire()).rejects.toMatchObject({ reason: 'closed' })
  })
})

describe('ConnectWindows', () => {
  it('keeps one window per sandbox port and forgets a sandbox’s, failing its waiters', async () => {
    const ws = new ConnectWindows(OPTS)
    const a = ws.of('s1', 8000)
    expect(ws.of('s1', 8000)).toBe(a)
    const b = ws.of('s1', 8001)
    const c = ws.of('s2', 8000)
    expect(new Set([a.id, b.id, c.id]).size).toBe(3)
    const { failed } = acquireMany(a, 3)
    ws.forget('s1')
    await tick()
    expect(failed).toHaveLength(1)
    expect(ws.size).toBe(1)
    expect(ws.of('s1', 8000)).not.toBe(a)
    ws.close()
    expect(ws.size).toBe(0)
  })

  it('drops a window idle for a minute', async () => {
    vi.useFakeTimers()
    try {
      const ws = new ConnectWindows(OPTS)
      const a = ws.of('s1', 8000)
      ;(await a.acquire()).answered()
      await vi.advanceTimersByTimeAsync(130_000)
      expect(ws.size).toBe(0)
      ws.close()
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('holdUntilAnswered', () => {
  const servers: Server[] = []
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r))
  })

  /** A loopback server that answers after `answerMs` (never, when undefined). */
  async function connected(answerMs: number | undefined): Promise<Socket> {
    const server = createServer((s) => {
      sockets.push(s)
      if (answerMs !== undefined) setTimeout(() => s.write('HTTP/1.0 200 OK\r\n\r\n'), answerMs)
    })
    servers.push(server)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { connect } = await import('node:net')
    const port = (server.address() as { port: number }).port
    const socket = connect(port, '127.0.0.1')
    sockets.push(socket)
    await new Promise((r) => socket.once('connect', r))
    return socket
  }

  it('freed when the socket closes unanswered', async () => {
    const socket = await connected(undefined)
    const ends: string[] = []
    holdUntilAnswered(
      { answered: () => ends.push('answered'), dropped: () => {}, free: () => ends.push('free') },
      socket,
      10_000,
    )
    socket.destroy()
    await new Promise((r) => setTimeout(r, 50))
    expect(ends).toEqual(['free'])
  })

  it.each([
    ['answered when the server answers first', 0, 'answered'],
    ['answered when the hold time passes first (accepted: long-lived)', undefined, 'answered'],
  ])('%s', async (_, answerMs, expected) => {
    const socket = await connected(answerMs)
    const ends: string[] = []
    const slot: ConnectSlot = {
      answered: () => ends.push('answered'),
      dropped: () => ends.push('dropped'),
      free: () => ends.push('free'),
    }
    holdUntilAnswered(slot, socket, 200)
    await new Promise((r) => setTimeout(r, 400))
    expect(ends).toEqual([expected])
    // The data is still there for the socket's reader.
    if (answerMs !== undefined) expect(String(socket.read())).toMatch(/^HTTP\/1.0 200/)
  })
})
