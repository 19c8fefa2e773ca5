// Helpers for the lifecycle suites: raw creates with Warren's extension
// fields, the API's Prometheus counters, sandbox state polling, and the
// host-side view of a sandbox (its writable layer, its container's processes).
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Sandbox } from 'e2b'
import { expect } from 'vitest'
import { type ApiTarget, api, eventually, type SandboxDetail } from './api-client.js'
import { mountsUnder, sandboxCgroup } from './node-fixture.js'
import { fixtureSecret } from './orchestrator-client.js'
import { underGvisor } from './test-isolation.js'
import type { WarrenFixture } from './warren-fixture.js'

export interface CreatedSandbox {
  sandboxID: string
  envdAccessToken?: string
  trafficAccessToken: string | null
  envdVersion: string
  domain: string
}

/** POST /v2/sandboxes with a body the SDK cannot express; must answer 201. */
export async function createRaw(
  w: ApiTarget,
  body: Record<string, unknown>,
): Promise<CreatedSandbox> {
  const res = await api(w, 'POST', '/v2/sandboxes', { json: { templateID: 'base', ...body } })
  expect(res.status, res.text).toBe(201)
  return res.body as CreatedSandbox
}

/** The SDK's handle on a sandbox created with `createRaw`, without touching its lease. */
export function handle(w: Pick<WarrenFixture, 'sdk'>, created: CreatedSandbox): Sandbox {
  // The constructor talks to nothing: unlike Sandbox.connect it does not extend the lease.
  return new Sandbox({
    ...w.sdk,
    sandboxId: created.sandboxID,
    sandboxDomain: created.domain,
    envdVersion: created.envdVersion,
    ...(created.envdAccessToken ? { envdAccessToken: created.envdAccessToken } : {}),
    ...(created.trafficAccessToken ? { trafficAccessToken: created.trafficAccessToken } : {}),
  })
}

/** GET /sandboxes/{id}: the detail, or undefined on 404. */
export async function detailOrGone(
  w: WarrenFixture,
  id: string,
): Promise<SandboxDetail | undefined> {
  const res = await api(w, 'GET', `/sandboxes/${id}`)
  if (res.status === 404) return undefined
  expect(res.status, res.text).toBe(200)
  return res.body as SandboxDetail
}

/**
 * Polls GET /sandboxes/{id} until it reads `state` (for paused: with its
 * snapshot kind, which a sandbox still pausing, shown as paused, lacks);
 * returns the detail and when it was seen.
 */
export async function waitForState(
  w: WarrenFixture,
  id: string,
  state: 'running' | 'paused',
  ms = 10_000,
): Promise<{ detail: SandboxDetail; seenAt: number }> {
  let last: SandboxDetail | undefined
  await eventually(
    `sandbox ${id} is ${state} (last: ${last?.state})`,
    async () => {
      last = await detailOrGone(w, id)
      return last?.state === state && (state === 'running' || !!last.pausedKind)
    },
    ms,
    50,
  )
  return { detail: last!, seenAt: Date.now() }
}

/** Polls until GET /sandboxes/{id} answers 404; returns when that was first seen. */
export async function waitForGone(w: WarrenFixture, id: string, ms = 10_000): Promise<number> {
  await eventually(`sandbox ${id} is gone`, async () => !(await detailOrGone(w, id)), ms, 50)
  return Date.now()
}

/** POST /sandboxes/{id}/pause; returns the status. */
export async function pause(w: ApiTarget, id: string, memory?: boolean): Promise<number> {
  const res = await api(w, 'POST', `/sandboxes/${id}/pause`, {
    json: memory === undefined ? {} : { memory },
  })
  return res.status
}

/** POST /v2/sandboxes/{id}/connect; must answer 200 or 201. */
export async function connect(
  w: WarrenFixture,
  id: string,
  body: Record<string, unknown> = {},
): Promise<{ status: number; body: CreatedSandbox & { resumedFrom?: 'memory' | 'files' } }> {
  const res = await api(w, 'POST', `/v2/sandboxes/${id}/connect`, { json: body })
  expect([200, 201], res.text).toContain(res.status)
  return { status: res.status, body: res.body as CreatedSandbox & { resumedFrom?: never } }
}

/** The API's Prometheus counters: `name{labels}` → value. */
export async function metrics(w: WarrenFixture): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${w.ports.internal}/metrics`, {
    headers: { 'x-warren-cluster-secret': fixtureSecret(w) },
  })
  expect(res.status).toBe(200)
  const out = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

/** One counter's value (0 when it has no sample yet); labels in the order prom-client prints them. */
export async function counter(
  w: WarrenFixture,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')
  return (await metrics(w)).get(l ? `${name}{${l}}` : name) ?? 0
}

/** Where a sandbox's files live on the host. */
export function sandboxDir(w: WarrenFixture, id: string): string {
  return join(w.dataDir, 'sandboxes', id)
}

/**
 * A file of the sandbox's writable layer, read from the host (works while it
 * is paused): on its mounted disk, or — a files-only snapshot keeps its disk
 * unmounted — from its disk image mounted read-only for the read.
 */
export function layerFile(w: WarrenFixture, id: string, path: string): string | undefined {
  const dir = sandboxDir(w, id)
  const read = (root: string) => {
    const p = join(root, 'upper', path)
    return existsSync(p) ? readFileSync(p, 'utf8') : undefined
  }
  if (mountsUnder(join(dir, 'disk')).length) return read(join(dir, 'disk'))
  if (!existsSync(join(dir, 'disk.img'))) return undefined
  const mnt = mkdtempSync('/tmp/warren-layer-')
  try {
    execFileSync('mount', ['-o', 'loop,ro,noload', join(dir, 'disk.img'), mnt])
    try {
      return read(mnt)
    } finally {
      execFileSync('umount', [mnt])
    }
  } finally {
    rmdirSync(mnt)
  }
}

/** The runc container of a sandbox as the node's runc root reports it. */
export function containerState(
  w: WarrenFixture,
  id: string,
): { status: string; pid: number } | undefined {
  try {
    // Under WARREN_TEST_ISOLATION=gvisor the sandbox is runsc's, in its own state directory.
    const runtime = underGvisor ? 'runsc' : 'runc'
    const out = execFileSync(
      runtime,
      ['--root', join(w.dataDir, runtime), 'state', `${w.prefix}-${id}`],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    )
    return JSON.parse(out) as { status: string; pid: number }
  } catch {
    return undefined
  }
}

/**
 * Kills every process of a (frozen) sandbox from the host, behind the
 * node's back. Under the v1 freezer a SIGKILL to a frozen task is only
 * delivered once it thaws, so the cgroup is thawed with the signals pending:
 * the processes die without running another instruction of their own.
 */
export async function killSandboxProcesses(w: WarrenFixture, id: string): Promise<void> {
  const procs = join(sandboxCgroup(w.prefix, id, 'pids'), 'cgroup.procs')
  const pids = () =>
    readFileSync(procs, 'utf8')
      .split('\n')
      .filter((p) => p)
      .map(Number)
  const found = pids()
  expect(found.length).toBeGreaterThan(0)
  for (const pid of found) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  const freezer = sandboxCgroup(w.prefix, id, 'freezer')
  const v1 = existsSync(join(freezer, 'freezer.state'))
  if (v1) writeFileSync(join(freezer, 'freezer.state'), 'THAWED')
  else writeFileSync(join(freezer, 'cgroup.freeze'), '0')
  await eventually(`the processes of ${id} are gone`, () => pids().length === 0, 10_000)
}

/**
 * A tiny HTTP server in the sandbox (on the node binary envd runs on) that
 * answers `boot=<token of this process> n=<requests so far>`: a hot resume
 * keeps the token, a fresh process has a new one. Returns once it answers
 * inside the sandbox.
 */
export async function startServer(sbx: Sandbox, port: number): Promise<void> {
  const js = `
const boot = Math.random().toString(36).slice(2)
let n = 0
const srv = require('http').createServer((req, res) => {
  n++
  req.resume()
  res.end('boot=' + boot + ' n=' + n + '\\n')
})
srv.keepAliveTimeout = 60000
srv.listen(${port}, '0.0.0.0', 1024)
`
  await sbx.files.write(`/tmp/server-${port}.js`, js)
  await sbx.commands.run(`/opt/warren/bin/node /tmp/server-${port}.js`, { background: true })
  await sbx.commands.run(
    `for i in $(seq 100); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:${port}/')" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
  )
}

/** The `boot=` token in a response of `startServer`'s server. */
export function bootOf(text: string): string | undefined {
  return /boot=(\w+)/.exec(text)?.[1]
}

/** A TCP echo server in the sandbox, listening on loopback only (reachable through envd's /tunnel). */
export async function startEchoServer(sbx: Sandbox, port: number): Promise<void> {
  const js = `require('net').createServer((c) => c.pipe(c)).listen(${port}, '127.0.0.1')`
  await sbx.files.write(`/tmp/echo-${port}.js`, js)
  await sbx.commands.run(`/opt/warren/bin/node /tmp/echo-${port}.js`, { background: true })
  await sbx.commands.run(
    `for i in $(seq 100); do python3 -c "import socket; s=socket.create_connection(('127.0.0.1', ${port})); s.sendall(b'x'); assert s.recv(1)==b'x'" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
  )
}

/**
 * A WebSocket server in the sandbox (no library: the handshake by hand) that
 * sends nothing but a ping every `pingMs` and drops whatever it receives:
 * a connection that is alive but carries no data.
 */
export async function startHeartbeatServer(sbx: Sandbox, port: number, pingMs: number) {
  const js = `
const crypto = require('crypto')
const srv = require('http').createServer((req, res) => res.end('ok'))
srv.on('upgrade', (req, sock) => {
  const accept = crypto.createHash('sha1')
    .update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
    .digest('base64')
  sock.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n')
  const timer = setInterval(() => sock.write(Buffer.from([0x89, 0x00])), ${pingMs})
  sock.on('data', () => {})
  sock.on('close', () => clearInterval(timer))
  sock.on('error', () => clearInterval(timer))
})
srv.listen(${port}, '0.0.0.0')
`
  await sbx.files.write(`/tmp/heartbeat-${port}.js`, js)
  await sbx.commands.run(`/opt/warren/bin/node /tmp/heartbeat-${port}.js`, { background: true })
  await sbx.commands.run(
    `for i in $(seq 100); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:${port}/')" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
  )
}
