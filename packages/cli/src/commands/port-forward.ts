import { type AddressInfo, createServer, type Socket } from 'node:net'
import { listen } from '@warren/shared'
import type { Command } from 'commander'
import { Sandbox } from 'e2b'
import WebSocket, { createWebSocketStream } from 'ws'
import {
  type ConnectionFlags,
  resolveConnection,
  sdkOptions,
  withConnectionFlags,
} from '../lib/connection.js'

const ENVD_PORT = 49983

export function parseForwardSpec(spec: string): { localPort: number; remotePort: number } {
  const m = /^(?:(\d{1,5}):)?(\d{1,5})$/.exec(spec)
  const remotePort = Number(m?.[2])
  const localPort = m?.[1] === undefined ? remotePort : Number(m[1])
  if (!m || !(remotePort >= 1 && remotePort <= 65535) || !(localPort >= 0 && localPort <= 65535)) {
    throw new Error(`invalid port spec '${spec}' (expected [local:]remote)`)
  }
  return { localPort, remotePort }
}

/**
 * A local TCP listener whose connections reach `remote` inside the sandbox:
 * each one is a WebSocket to envd's /tunnel through the sandbox proxy.
 */
export function registerPortForward(program: Command): void {
  withConnectionFlags(
    program.command('port-forward').argument('<sandboxId>').argument('<[local:]remote>'),
  )
    .description('forward a local TCP port to a port inside a sandbox')
    .option('--address <address>', 'local address to listen on', '127.0.0.1')
    .action(
      async (
        id: string,
        spec: string,
        opts: ConnectionFlags & { address: string; json?: boolean },
      ) => {
        const { localPort, remotePort } = parseForwardSpec(spec)
        const conn = resolveConnection(opts)
        // Connect resolves the envd token (and resumes a paused sandbox).
        const sbx = await Sandbox.connect(id, sdkOptions(conn))
        const token = (sbx as unknown as { envdAccessToken?: string }).envdAccessToken
        const tunnelUrl = new URL(`/tunnel?host=localhost&port=${remotePort}`, conn.sandboxUrl)
        tunnelUrl.protocol = tunnelUrl.protocol === 'https:' ? 'wss:' : 'ws:'
        // Open connections, so that stopping can end them: server.close()
        // alone waits for every forwarded connection to finish first.
        const open = new Set<() => void>()
        const server = createServer((socket) =>
          forward(socket, tunnelUrl.toString(), id, token, open),
        )
        await listen(server, opts.address, localPort)
        const { port } = server.address() as AddressInfo
        const line = { sandboxId: id, local: `${opts.address}:${port}`, remotePort }
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(line)}\n`
            : `Forwarding ${line.local} -> ${id}:${remotePort}\n`,
        )
        const stop = () => {
          server.close(() => process.exit(0))
          for (const end of open) end()
        }
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      },
    )
}

function forward(
  socket: Socket,
  url: string,
  sandboxId: string,
  token: string | undefined,
  open: Set<() => void>,
): void {
  socket.pause()
  const ws = new WebSocket(url, {
    headers: {
      'E2b-Sandbox-Id': sandboxId,
      'E2b-Sandbox-Port': String(ENVD_PORT),
      ...(token ? { 'X-Access-Token': token } : {}),
    },
  })
  const end = () => {
    socket.destroy()
    ws.terminate()
  }
  open.add(end)
  socket.once('close', () => open.delete(end))
  const fail = (reason: string) => {
    process.stderr.write(`port-forward: ${reason}\n`)
    end()
  }
  ws.once('unexpected-response', (_req, res) => fail(`tunnel refused: HTTP ${res.statusCode}`))
  ws.once('error', (err) => fail(err.message))
  ws.once('open', () => {
    const stream = createWebSocketStream(ws)
    socket.pipe(stream).pipe(socket)
    const close = () => {
      socket.destroy()
      stream.destroy()
    }
    socket.once('close', close)
    stream.once('close', close)
    stream.once('error', close)
    socket.once('error', close)
    socket.resume()
  })
}
