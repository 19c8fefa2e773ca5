import { connect, type OnReadOpts, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  checkServerIdentity,
  type PeerCertificate,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls'

export interface DialRetry {
  /** Attempts after the first, for a refused or unreachable port. */
  retries: number
  /** First pause between attempts; doubles each time. */
  initialDelayMs: number
}

const RETRYABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET'])

/** Whether a failed connect (after `attempt` retries) is tried again under `retry`. */
export function retriesDial(err: unknown, attempt: number, retry: DialRetry): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code ?? ''
  return attempt < retry.retries && RETRYABLE.has(code)
}

/** One TCP connection, with a bounded connect timeout; `onread` as `net.connect`'s (see bulkReads). */
export function dialOnce(
  host: string,
  port: number,
  timeoutMs = 10_000,
  onread?: OnReadOpts,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ...(onread ? { onread } : {}) })
    const onError = (err: Error) => {
      socket.destroy()
      reject(err)
    }
    socket.setTimeout(timeoutMs, () =>
      onError(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
    )
    socket.once('error', onError)
    socket.once('connect', () => {
      socket.setTimeout(0)
      socket.off('error', onError)
      resolve(socket)
    })
  })
}

/**
 * How a hop checks its server's certificate: another Warren component's,
 * against the cluster CA (or the system's roots without one) and for the
 * name the hop was addressed by.
 */
export interface TlsVerify {
  ca?: string | undefined
  servername: string
}

/** Node's TLS options for `verify`; for `undefined`, no check (see `startTls`). */
export function tlsOptionsFor(verify: TlsVerify | undefined) {
  if (!verify) return { rejectUnauthorized: false }
  // An address is checked against the certificate's IP entries; SNI carries names only.
  const ip = /^[\d.]+$|:/.test(verify.servername)
  return {
    rejectUnauthorized: true,
    ...(verify.ca ? { ca: verify.ca } : {}),
    ...(ip ? { host: verify.servername } : { servername: verify.servername }),
    // The identity is the hop's own, whatever name the connection is made
    // for: undici names each connection after the request's Host (a sandbox
    // host `{port}-{id}.{domain}` through the edge), which no node proxy's
    // certificate carries.
    checkServerIdentity: (_name: string, cert: PeerCertificate) =>
      checkServerIdentity(verify.servername, cert),
  }
}

/**
 * TLS over a connected socket. Unverified (no `verify`): the peer is a
 * server in a sandbox (reached by address, with whatever certificate it made
 * itself), and the hop is inside the node; what TLS adds is speaking the
 * server's protocol, as E2B's proxy does for `httpsPorts`. Verified: a hop
 * between Warren's components (an edge to a node proxy).
 */
export function startTls(
  socket: Socket,
  timeoutMs = 10_000,
  verify?: TlsVerify,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket, ...tlsOptionsFor(verify), ALPNProtocols: ['http/1.1'] })
    const onError = (err: Error) => {
      tls.destroy()
      reject(err)
    }
    tls.setTimeout(timeoutMs, () =>
      onError(Object.assign(new Error('TLS handshake timeout'), { code: 'ETIMEDOUT' })),
    )
    tls.once('error', onError)
    tls.once('secureConnect', () => {
      tls.setTimeout(0)
      tls.off('error', onError)
      resolve(tls)
    })
  })
}

/**
 * Connects, retrying briefly with backoff while the port refuses: a server
 * that a sandbox is still starting gets a moment before the client sees 502.
 */
export async function dialWithRetry(
  host: string,
  port: number,
  retry: DialRetry,
  onread?: OnReadOpts,
): Promise<Socket> {
  let delay = retry.initialDelayMs
  for (let attempt = 0; ; attempt++) {
    try {
      // A failed attempt never read, so its `onread` can serve the next one.
      return await dialOnce(host, port, undefined, onread)
    } catch (err) {
      if (!retriesDial(err, attempt, retry)) throw err
      await sleep(delay)
      delay *= 2
    }
  }
}

/**
 * Idle keep-alive connections stay open well past what clients keep them for
 * (undici keeps one ~4 s by default): a server that closes first races the
 * client's next request on that connection, which then fails with "other side
 * closed".
 */
export function keepConnectionsLong(server: {
  keepAliveTimeout: number
  headersTimeout: number
}): void {
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000
}
