import { once } from 'node:events'
import type { Server as HttpServer } from 'node:http'
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'

/**
 * `http://host:port`, with an IPv6 host bracketed (`http://[::1]:3000`):
 * unbracketed, the URL does not parse.
 */
export function httpUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
}

/** Stops an HTTP server listening and ends its connections, idle or not; resolves once closed. */
export function closeServer(s: HttpServer): Promise<void> {
  return new Promise<void>((resolve) => {
    s.close(() => resolve())
    s.closeAllConnections?.()
  })
}

/**
 * Starts `server` (node:net or node:http) listening on host:port (port 0: any
 * free port) and resolves with its URL once it listens, the port being the
 * one actually bound; rejects with the server's 'error' (EADDRINUSE, …) instead.
 */
export async function listen(server: Server, host: string, port: number): Promise<string> {
  // once() rejects on 'error' while waiting and removes both listeners after.
  const listening = once(server, 'listening')
  server.listen(port, host)
  await listening
  return httpUrl(host, (server.address() as AddressInfo).port)
}

/**
 * Where a public listener (the API, the edge proxy) binds when no listen
 * host is configured: both loopbacks, because `{port}-{id}.localhost` and
 * `localhost` resolve to either ::1 or 127.0.0.1, and a client may try ::1
 * first. An explicit host means exactly that host.
 */
export const DEFAULT_LISTEN_HOSTS = ['127.0.0.1', '::1'] as const

export interface Listening {
  /** The port, and the base URL on the first address (`http://127.0.0.1:3000`). */
  port: number
  url: string
  /** Every address listened on. */
  hosts: string[]
  /** Closes the listeners of the further addresses; `server` is the caller's to close. */
  close(): Promise<void>
}

/**
 * Listens with `server` on the first host and feeds the connections of the
 * others into it, all on one port (the first one's, when `port` is 0). With
 * the default hosts, a loopback the machine lacks (IPv6 off) is skipped.
 */
export async function listenOn(
  server: Server,
  port: number,
  host: string | undefined,
  onSkipped: (host: string, err: Error) => void = () => {},
): Promise<Listening> {
  const hosts: string[] = host ? [host] : [...DEFAULT_LISTEN_HOSTS]
  await listen(server, hosts[0]!, port)
  const actual = (server.address() as { port: number }).port
  const extra: Server[] = []
  const closeExtra = () =>
    Promise.all(extra.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(
      () => {},
    )
  const listened = [hosts[0]!]
  for (const h of hosts.slice(1)) {
    const feeder = createServer({ allowHalfOpen: true }, (socket: Socket) =>
      server.emit('connection', socket),
    )
    try {
      await listen(feeder, h, actual)
      extra.push(feeder)
      listened.push(h)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (!host && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) {
        onSkipped(h, err as Error)
        continue
      }
      await closeExtra()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      throw err
    }
  }
  return { port: actual, url: httpUrl(hosts[0]!, actual), hosts: listened, close: closeExtra }
}

/**
 * A loopback port nobody listens on at this moment (for a child process to
 * take; another process may take it first, which that child then reports).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer()
  await listen(server, host, 0)
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
