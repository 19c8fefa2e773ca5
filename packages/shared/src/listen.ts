import { createServer, type Server, type Socket } from 'node:net'

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
  await listen(server, port, hosts[0]!)
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
      await listen(feeder, actual, h)
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
  const first = hosts[0]!.includes(':') ? `[${hosts[0]}]` : hosts[0]
  return { port: actual, url: `http://${first}:${actual}`, hosts: listened, close: closeExtra }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err)
    server.once('error', onError)
    server.listen(port, host, () => {
      server.removeListener('error', onError)
      resolve()
    })
  })
}
