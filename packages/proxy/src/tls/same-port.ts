import type { Server as HttpServer } from 'node:http'
import type { Socket } from 'node:net'
import { type TLSSocket, type TlsOptions, Server as TlsServer } from 'node:tls'
import { readSni } from '@warren/shared'

/** The first byte of every TLS connection: a handshake record. No HTTP method starts with it. */
const TLS_HANDSHAKE = 0x16
/**
 * A connection that sends nothing is dropped after this long: the HTTP
 * server's own header timeout starts only once it has the connection.
 */
const FIRST_BYTE_TIMEOUT_MS = 30_000
const HANDSHAKE_TIMEOUT_MS = 10_000
/** A TLS record: fatal alert `unrecognized_name` (RFC 6066 §3), the answer to a name not served. */
const UNRECOGNIZED_NAME = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70])

/** Hands a connection to the HTTP server, with the bytes already read from it. */
type ToHttp = (socket: Socket, read?: Buffer) => void

export interface SamePortTls {
  tls: TlsServer
  /** Destroys the connections the HTTP server does not track: silent ones, and TLS ones' sockets. */
  close(): void
}

/**
 * Makes `server` speak TLS too, on the port(s) it listens on: each new
 * connection's first byte says whether it is a TLS handshake (handed to a
 * TLS server whose decrypted sockets go back to the HTTP server) or plain
 * HTTP (handed straight to it). Both end in the same request, upgrade and
 * keep-alive handling. Costs one look at the first chunk per connection,
 * nothing per request.
 */
export function acceptTlsToo(
  server: HttpServer,
  options: TlsOptions,
  /** Names served; a ClientHello naming another gets the alert `unrecognized_name`. */
  serves: (servername: string) => boolean = () => true,
  /**
   * Who takes each connection, plain or decrypted, with its first bytes when
   * they were read already; by default the HTTP server. `toHttp` hands one
   * on to it, with the bytes read from it so far.
   */
  take?: (socket: Socket, first: Buffer | undefined, toHttp: ToHttp) => void,
): SamePortTls {
  const own = server.listeners('connection')
  if (own.length !== 1) throw new Error('expected only the HTTP server its own connection listener')
  const plain = own[0] as (socket: Socket) => void
  server.removeListener('connection', plain)
  const toHttp: ToHttp = (socket, read) => {
    plain.call(server, socket)
    if (read) socket.emit('data', read)
  }
  const handle = take ?? toHttp
  // HTTP/1.1 only: the forwarder speaks HTTP/1 and splices upgrades.
  const tls = new TlsServer(
    { ...options, ALPNProtocols: ['http/1.1'], handshakeTimeout: HANDSHAKE_TIMEOUT_MS },
    (secure: TLSSocket) => handle(secure, undefined, toHttp),
  )
  // A refused handshake (unknown name, bad hello) ends that connection only.
  tls.on('tlsClientError', (_err, socket) => socket.destroy())
  const pending = new Set<Socket>()

  server.on('connection', (socket: Socket) => {
    pending.add(socket)
    const stop = () => {
      socket.removeListener('data', onFirst)
      socket.removeListener('error', onFail)
      socket.removeListener('end', onFail)
      socket.removeListener('timeout', onFail)
      socket.setTimeout(0)
    }
    const onFail = () => {
      stop()
      pending.delete(socket)
      socket.destroy()
    }
    // The first chunk is taken as it flows. Plain HTTP gets it as its own
    // first 'data' event, right after the HTTP server took the socket (no
    // pause, unshift and resume on the hot path); TLS finds it put back in
    // the socket's buffer, where the TLS socket reads it first.
    const onFirst = (chunk: Buffer) => {
      stop()
      if (chunk[0] === TLS_HANDSHAKE) {
        // Refused before any TLS work when the first chunk holds the whole
        // ClientHello (it nearly always does); otherwise the SNI callback
        // refuses it, closing the connection without an alert.
        const name = readSni(chunk)
        if (typeof name === 'string' && name !== 'incomplete' && !serves(name.toLowerCase())) {
          pending.delete(socket)
          refuseName(socket)
          return
        }
        socket.pause()
        socket.unshift(chunk)
        socket.allowHalfOpen = false
        socket.once('close', () => pending.delete(socket))
        tls.emit('connection', socket)
      } else {
        pending.delete(socket)
        handle(socket, chunk, toHttp)
      }
    }
    socket.on('data', onFirst)
    socket.on('error', onFail)
    socket.on('end', onFail)
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, onFail)
  })

  return {
    tls,
    close() {
      for (const socket of pending) socket.destroy()
      pending.clear()
    },
  }
}

/** Answers with the alert, ignores the rest of the hello, and closes. */
function refuseName(socket: Socket): void {
  socket.on('error', () => socket.destroy())
  socket.resume()
  socket.end(UNRECOGNIZED_NAME)
  socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => socket.destroy())
}
