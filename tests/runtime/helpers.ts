// Small tools shared by the runtime suites: commands in a sandbox, a TCP
// probe that runs inside it, host-side servers, and polling.
import { execFileSync } from 'node:child_process'
import { createServer, type Server, type Socket } from 'node:net'
import { CommandExitError, type Sandbox } from 'e2b'

/** Runs a shell command in the sandbox; returns stdout, throws on a non-zero exit. */
export async function sh(sbx: Sandbox, cmd: string, user: 'root' | 'user' = 'user') {
  const r = await sbx.commands.run(cmd, { user, timeoutMs: 60_000 })
  return r.stdout
}

/** Like sh, but a non-zero exit is returned rather than thrown. */
export async function shResult(
  sbx: Sandbox,
  cmd: string,
  user: 'root' | 'user' = 'user',
): Promise<{ exitCode: number; stdout: string; stderr: string; error?: string | undefined }> {
  try {
    const r = await sbx.commands.run(cmd, { user, timeoutMs: 60_000 })
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }
  } catch (err) {
    if (err instanceof CommandExitError) {
      return { exitCode: err.exitCode, stdout: err.stdout, stderr: err.stderr, error: err.error }
    }
    throw err
  }
}

/**
 * Connects to host:port from inside a sandbox (2 s timeout) and reports
 * `connected:<first bytes>`, `timeout` or `error:<ERRNO>`.
 */
const PROBE = `import errno, socket, sys
h, p = sys.argv[1], int(sys.argv[2])
try:
    s = socket.create_connection((h, p), 2)
    s.settimeout(2)
    try:
        d = s.recv(64)
    except Exception:
        d = b''
    print('connected:' + d.decode(errors='replace'))
except socket.timeout:
    print('timeout')
except OSError as e:
    print('error:' + errno.errorcode.get(e.errno, str(e.errno)))
`

/** A TCP server that greets with `banner` and closes; binds `host:port` in the sandbox. */
const BANNER_SERVER = `import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[3].encode())
    c.close()
`

export async function installProbe(sbx: Sandbox): Promise<void> {
  await sbx.files.write('/tmp/probe.py', PROBE)
  await sbx.files.write('/tmp/banner.py', BANNER_SERVER)
}

export async function probe(sbx: Sandbox, host: string, port: number): Promise<string> {
  return (await sh(sbx, `python3 /tmp/probe.py ${host} ${port}`)).trim()
}

/** Starts a banner server in the sandbox in the background and waits until it answers inside. */
export async function startBannerServer(
  sbx: Sandbox,
  host: string,
  port: number,
  banner: string,
): Promise<void> {
  await sbx.commands.run(`python3 /tmp/banner.py ${host} ${port} ${banner}`, { background: true })
  await waitFor(
    async () => (await probe(sbx, host, port)) === `connected:${banner}`,
    'banner server',
  )
}

/** A host TCP server that greets every client with `banner` and records their addresses. */
export async function hostBannerServer(
  host: string,
  banner: string,
): Promise<{ server: Server; port: number; clients: string[]; close: () => Promise<void> }> {
  const clients: string[] = []
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    clients.push(s.remoteAddress ?? '?')
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    s.end(banner)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve())
  })
  const { port } = server.address() as { port: number }
  return {
    server,
    port,
    clients,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** Polls `check` (at most `timeoutMs`) until it returns true. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** GET from the host with a short timeout; the status, or the error's name. */
export async function hostGet(url: string): Promise<number | string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) })
    await res.arrayBuffer()
    return res.status
  } catch (err) {
    return (err as Error).name
  }
}

/** Whether the host can still start a process. */
export function hostCanSpawn(): boolean {
  return execFileSync('sh', ['-c', 'echo alive'], { encoding: 'utf8' }).trim() === 'alive'
}
