import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { Sandbox } from 'e2b'

const ROOT = resolve(import.meta.dirname, '../..')
export const BUNDLE = join(ROOT, 'packages/envd/dist/bundle/envd.mjs')

/**
 * Rebuilds the bundle when any source it takes in (envd's, and the shared
 * package's it imports) is newer than it (tests run the real bundle).
 */
export function ensureBundle(): void {
  const srcs = [join(ROOT, 'packages/envd/src'), join(ROOT, 'packages/shared/src')]
  const stale =
    !existsSync(BUNDLE) ||
    execFileSync('find', [...srcs, '-newer', BUNDLE, '-name', '*.ts'], {
      encoding: 'utf8',
    }).trim() !== ''
  if (stale)
    execFileSync('node', [join(ROOT, 'packages/envd/scripts/bundle.js')], { stdio: 'ignore' })
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolvePort(port))
    })
  })
}

export interface RunningEnvd {
  port: number
  url: string
  pid: number
  tmp: string
  /** The sandbox-side path of the test user's home. */
  home: string
  logs: () => string
  stop: () => Promise<void>
}

const sh = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`

/**
 * Starts the bundled envd standalone on loopback as root, in a private mount
 * namespace where /etc/passwd and /etc/group gain a `user` (uid 1000) and
 * /home and /root are scratch directories, so the host is never modified.
 */
export async function startEnvd(
  opts: { port?: number; args?: string[] } = {},
): Promise<RunningEnvd> {
  ensureBundle()
  const tmp = mkdtempSync('/tmp/envd-test-')
  const keep = (line: string) =>
    line.trim() !== '' && !/^[^:]*:[^:]*:1000:/.test(line) && !/^user:/.test(line)
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').filter(keep)
  passwd.push('user:x:1000:1000::/home/user:/bin/bash')
  const group = readFileSync('/etc/group', 'utf8').split('\n').filter(keep)
  group.push('user:x:1000:')
  writeFileSync(join(tmp, 'passwd'), `${passwd.join('\n')}\n`)
  writeFileSync(join(tmp, 'group'), `${group.join('\n')}\n`)
  mkdirSync(join(tmp, 'home/user'), { recursive: true })
  mkdirSync(join(tmp, 'root'), { mode: 0o700 })
  const port = opts.port ?? (await freePort())
  const script = [
    `mount --bind ${sh(join(tmp, 'passwd'))} /etc/passwd`,
    `mount --bind ${sh(join(tmp, 'group'))} /etc/group`,
    `mount --bind ${sh(join(tmp, 'home'))} /home`,
    `mount --bind ${sh(join(tmp, 'root'))} /root`,
    'chown 1000:1000 /home/user && chmod 755 /home/user',
    'cd /',
    `exec ${sh(process.execPath)} ${sh(BUNDLE)} --host 127.0.0.1 --port ${port} ${(opts.args ?? []).map(sh).join(' ')}`,
  ].join(' && ')
  const child: ChildProcess = spawn(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', script],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 15_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`envd exited early:\n${output}`)
    try {
      const res = await fetch(`${url}/health`)
      if (res.status === 204) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`envd did not become healthy:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  return {
    port,
    url,
    pid: child.pid!,
    tmp,
    home: '/home/user',
    logs: () => output,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      }
      rmSync(tmp, { recursive: true, force: true })
    },
  }
}

/** POST /init as the orchestrator does. */
export async function initEnvd(
  envd: RunningEnvd,
  body: Record<string, unknown>,
  token?: string,
): Promise<Response> {
  return fetch(`${envd.url}/init`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { 'X-Access-Token': token } : {}) },
    body: JSON.stringify(body),
  })
}

/** The official SDK in debug mode, talking straight to this envd. */
export function sdk(envd: RunningEnvd, envdAccessToken?: string): Sandbox {
  return new Sandbox({
    sandboxId: 'debug',
    envdVersion: '0.6.4',
    envdAccessToken,
    debug: true,
    sandboxUrl: envd.url,
  })
}

/** The host-side path of a file under the test user's home. */
export function hostPath(envd: RunningEnvd, sandboxPath: string): string {
  if (sandboxPath.startsWith('/home/')) return join(envd.tmp, sandboxPath)
  if (sandboxPath.startsWith('/root')) return join(envd.tmp, sandboxPath)
  return sandboxPath
}

export function ownerOf(path: string): number {
  return statSync(path).uid
}
