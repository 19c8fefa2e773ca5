import type { Server } from 'node:http'
import type { AddressInfo, Server as NetServer, Socket } from 'node:net'

/** What a test file runs after each test (see its `afterEach`). */
export type Cleanup = (() => Promise<void> | void)[]

/**
 * Listens on a free loopback port; `cleanup` gets the server's closing,
 * with every connection it accepted destroyed first.
 */
export async function listenForTest(server: Server | NetServer, cleanup: Cleanup): Promise<number> {
  const open = new Set<Socket>()
  server.on('connection', (s: Socket) => open.add(s))
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy()
        server.close(() => r())
      }),
  )
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return (server.address() as AddressInfo).port
}
