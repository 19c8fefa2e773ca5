import { connect, type OnReadOpts, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { TLSSocket } from 'node:tls'
import { type ConnectSlot, type ConnectWindowHandle, holdUntilAnswered } from './connect-window.js'
import {
  type DialRetry,
  dialOnce,
  dialWithRetry,
  retriesDial,
  startTls,
  type TlsVerify,
} from './dial.js'

/**
 * A connect attempt is given up after this long, and made again: across a
 * veth a SYN is answered in well under a millisecond unless the server's
 * accept queue was full and it was dropped — and the kernel would send it
 * again only after a second. Doubles per attempt after the first
 * `FIXED_PROBES`, so a slow host still connects.
 */
const SYN_PROBE_MS = 100
const FIXED_PROBES = 4
/** All attempts of one connection together, as a plain connect's timeout. */
const CONNECT_BUDGET_MS = 10_000

/**
 * Connects through `window`: each attempt holds a place in it (waiting for
 * one first). An attempt unanswered within the probe time counts as a
 * dropped SYN (the window shrinks) and is made again; a refused or reset one
 * is retried as `retry` says (a server still starting). A port that drops
 * SYNs has a listener: it is tried for the whole budget, never given up
 * after one retry round. Resolves with the socket and its place, which the
 * caller ends when the server answers (see `holdUntilAnswered`).
 */
export async function dialThroughWindow(
  host: string,
  port: number,
  window: ConnectWindowHandle,
  retry: DialRetry | undefined,
  /** As `net.connect`'s (see bulkReads); shared by the attempts, of which only the last reads. */
  onread?: OnReadOpts,
): Promise<{ socket: Socket; slot: ConnectSlot }> {
  let probe = SYN_PROBE_MS
  let drops = 0
  let delay = retry?.initialDelayMs ?? 0
  let refusals = 0
  let deadline: number | undefined
  for (let attempt = 0; ; attempt++) {
    const slot = await window.acquire(attempt > 0)
    deadline ??= Date.now() + CONNECT_BUDGET_MS
    const left = deadline - Date.now()
    try {
      const socket = await connectWithin(host, port, Math.max(1, Math.min(probe, left)), onread)
      return { socket, slot }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ETIMEDOUT') {
        slot.dropped()
        if (Date.now() >= deadline) throw err
        if (++drops >= FIXED_PROBES) probe *= 2
        continue
      }
      slot.free()
      if (!retry || !retriesDial(err, refusals++, retry) || Date.now() >= deadline) throw err
      await sleep(delay)
      delay *= 2
    }
  }
}

/**
 * One TCP connect, given up (ETIMEDOUT) after `ms`. The verdict waits for
 * the event loop's next poll: after a stall (a long GC pause) the timer runs
 * before the poll that would deliver a connect made meanwhile, and a slow
 * loop is not a dropped SYN.
 */
function connectWithin(
  host: string,
  port: number,
  ms: number,
  onread?: OnReadOpts,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ...(onread ? { onread } : {}) })
    let done = false
    const fail = (err: Error) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    const timer = setTimeout(
      () =>
        setImmediate(() =>
          fail(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
        ),
      ms,
    )
    socket.once('error', fail)
    socket.once('connect', () => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.off('error', fail)
      resolve(socket)
    })
  })
}

/**
 * A new keep-alive connection to an upstream: through its connect window
 * when it has one (holding the place until the server answers on it; for
 * TLS, until the handshake, which the server answers only once it has
 * accepted), retried as `retry` says, TLS as `tls` says (see `startTls`).
 */
export async function dialUpstream(
  host: string,
  port: number,
  opts: { retry?: DialRetry | undefined; tls?: boolean | TlsVerify; window?: ConnectWindowHandle },
): Promise<Socket | TLSSocket> {
  const { retry, tls = false, window } = opts
  let socket: Socket
  let slot: ConnectSlot | undefined
  if (window) ({ socket, slot } = await dialThroughWindow(host, port, window, retry))
  else socket = retry ? await dialWithRetry(host, port, retry) : await dialOnce(host, port)
  socket.setNoDelay(true)
  socket.setKeepAlive(true, 60_000)
  if (tls === false) {
    if (slot && window) holdUntilAnswered(slot, socket, window.opts.holdMs)
    return socket
  }
  try {
    const secure = await startTls(socket, undefined, tls === true ? undefined : tls)
    slot?.answered()
    return secure
  } catch (err) {
    slot?.free()
    socket.destroy()
    throw err
  }
}
