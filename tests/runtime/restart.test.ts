// The real orchestrator process killed with SIGKILL (once in the middle of a
// create) and started again: healthy sandboxes are adopted with their
// processes and files, the half-created one's debris is gone, and a final
// kill of everything leaves nothing behind. Privileged: runc, netns, nftables.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { createClient } from '@connectrpc/connect'
import { clusterTransport, newSandboxId, newToken, toWarrenError } from '@warren/shared'
import {
  OrchestratorService,
  type Sandbox as SandboxMessage,
  SandboxState,
} from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import { afterAll, expect, it } from 'vitest'
import { CLI } from '../helpers/cli.js'
import {
  cleanupHost,
  envdClient,
  freePort,
  hostLeftovers,
  mountsUnder,
  servicePorts,
  startNodeFixture,
  uniquePool,
  uniquePrefix,
} from '../helpers/node-fixture.js'
import { sh, waitFor } from './helpers.js'

const ROOT = resolve(import.meta.dirname, '../..')

const prefix = uniquePrefix()
const dataDir = mkdtempSync(`/tmp/warren-${prefix}-`)
const addressPool = uniquePool()
const created: string[] = []
let proc: { child: ChildProcess; output: () => string } | undefined
let rpcPort = 0
let services: Awaited<ReturnType<typeof servicePorts>> | undefined

const CLUSTER_SECRET = newToken()

function startOrchestrator(warmNetworkSlots: number) {
  const child = spawn(process.execPath, [CLI, 'orchestrator'], {
    cwd: ROOT,
    env: {
      ...process.env,
      WARREN_DATA_DIR: dataDir,
      WARREN_TEMPLATES_DIR: '/var/lib/warren/templates',
      WARREN_NODE_PREFIX: prefix,
      WARREN_NODE_ID: `test-${prefix}`,
      WARREN_ADDRESS_POOL: addressPool,
      WARREN_LISTEN_HOST: '127.0.0.1',
      WARREN_CLUSTER_SECRET: CLUSTER_SECRET,
      WARREN_ORCHESTRATOR_PORT: String(rpcPort),
      WARREN_NODE_PROXY_PORT: String(rpcPort + 1),
      WARREN_WARM_NETWORK_SLOTS: String(warmNetworkSlots),
      WARREN_LOG_LEVEL: 'info',
      WARREN_DNS_PORT: String(services?.dnsPort),
      WARREN_EGRESS_HTTP_PORT: String(services?.egressHttpPort),
      WARREN_EGRESS_TLS_PORT: String(services?.egressTlsPort),
      WARREN_DNS_UPSTREAMS: services?.dnsUpstreams ?? '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (d) => (output += d))
  child.stderr?.on('data', (d) => (output += d))
  proc = { child, output: () => output }
  return proc
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((r) => child.once('exit', () => r()))

const client = () =>
  createClient(
    OrchestratorService,
    clusterTransport(`http://127.0.0.1:${rpcPort}`, { secret: CLUSTER_SECRET }),
  )

async function waitReady(p: NonNullable<typeof proc>) {
  await waitFor(async () => {
    if (p.child.exitCode !== null) throw new Error(`orchestrator exited:\n${p.output()}`)
    await client().nodeInfo({})
    return true
  }, 'orchestrator RPC')
}

/** Tool runs (runc, mount, ip, nft) of a killed orchestrator that are still finishing. */
function inflightTools(): string[] {
  const tools = new Set(['runc', 'mount', 'umount', 'ip', 'nft', 'nsenter'])
  const out: string[] = []
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      const cmd = argv.join(' ')
      if (
        tools.has(basename(argv[0] ?? '')) &&
        (cmd.includes(dataDir) || cmd.includes(`${prefix}-`))
      ) {
        out.push(`${pid} ${cmd}`)
      }
    } catch {
      // gone
    }
  }
  return out
}

const tokens = new Map<string, string>()
const sdkFor = (s: SandboxMessage) =>
  envdClient(
    { sandboxId: s.sandboxId, envdVersion: s.envdVersion, sandboxIp: s.address },
    tokens.get(s.sandboxId),
  )

afterAll(async () => {
  if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
    proc.child.kill('SIGKILL')
    await exited(proc.child)
  }
  // Whatever the test left, an in-process node on the same prefix adopts or
  // removes it, kills what it adopted and proves the host clean.
  if (hostLeftovers(prefix, dataDir).length || existsSync(join(dataDir, 'sandboxes'))) {
    if (created.length) console.error(`[${prefix}] sandboxes created: ${created.join(' ')}`)
    const f = await startNodeFixture({ config: { prefix, dataDir, addressPool } })
    await f.teardown()
  } else {
    await cleanupHost(prefix, dataDir)
  }
})

/**
 * Starts a create and SIGKILLs the orchestrator as soon as `file` exists in
 * the new sandbox's directory (the directory itself when ''); returns its id.
 */
async function killDuringCreate(p: NonNullable<typeof proc>, file: string): Promise<string> {
  const halfId = newSandboxId()
  created.push(halfId)
  const half = client()
    .create({ sandboxId: halfId, templateId: 'base', envdAccessToken: newToken() })
    .then(
      () => 'created',
      (e: unknown) => toWarrenError(e).code,
    )
  const marker = join(dataDir, 'sandboxes', halfId, file)
  while (!existsSync(marker)) await new Promise((r) => setImmediate(r))
  p.child.kill('SIGKILL')
  await exited(p.child)
  expect(await half).not.toBe('created')
  // The killed node's last tool runs (a runc run, say) finish on their own;
  // the next node starts after them, as a service manager would.
  await waitFor(() => inflightTools().length === 0, 'in-flight tools')
  const debris = hostLeftovers(prefix, dataDir)
  console.log(`debris after SIGKILL (${file || 'directory'}):\n  ${debris.join('\n  ')}`)
  expect(debris.some((d) => d.includes(halfId))).toBe(true)
  return halfId
}

/** The healthy sandboxes came back as they were; nothing of `halfId` remains. */
async function expectAdoptedAndClean(healthy: SandboxMessage[], halfId: string) {
  const listed = (await client().list({})).sandboxes
  expect(listed.map((s) => s.sandboxId).sort()).toEqual(healthy.map((s) => s.sandboxId).sort())
  expect(listed.every((s) => s.state === SandboxState.RUNNING)).toBe(true)
  for (const s of listed) {
    const before = healthy.find((h) => h.sandboxId === s.sandboxId)!
    expect(s.address).toBe(before.address)
    const sbx = sdkFor(s)
    expect(await sbx.files.read('/home/user/before.txt')).toBe(`written in ${s.sandboxId}\n`)
    expect(await sh(sbx, 'pgrep -x sleep -a')).toContain('sleep 1234')
  }
  const info = (await client().nodeInfo({})).status!
  expect(info.sandboxes).toBe(2)
  expect(Number(info.memoryMbAllocated)).toBe(listed.reduce((n, s) => n + s.memoryMb, 0))

  expect(
    toWarrenError(
      await client()
        .get({ sandboxId: halfId })
        .catch((e) => e),
    ).code,
  ).toBe('not_found')
  expect(existsSync(join(dataDir, 'sandboxes', halfId))).toBe(false)
  expect(mountsUnder(join(dataDir, 'sandboxes', halfId))).toEqual([])
  const left = hostLeftovers(prefix, dataDir)
  expect(left.filter((l) => l.includes(halfId))).toEqual([])
  // Only the adopted sandboxes' objects: the warm and half-built slots are gone.
  expect(left.filter((l) => l.startsWith('netns '))).toHaveLength(2)
  expect(left.filter((l) => l.startsWith('link '))).toHaveLength(2)
  expect(left.filter((l) => l.startsWith('container '))).toHaveLength(2)
  // Each: its disk and its overlay root.
  expect(left.filter((l) => l.startsWith('mount '))).toHaveLength(4)
  expect(left.filter((l) => l.startsWith('loop device '))).toHaveLength(2)
}

it('adopts healthy sandboxes after SIGKILL and removes a half-created one', async () => {
  rpcPort = await freePort()
  services = await servicePorts()
  let p = startOrchestrator(2)
  await waitReady(p)

  // Two healthy sandboxes, each with a file and a running process.
  const healthy: SandboxMessage[] = []
  for (let i = 0; i < 2; i++) {
    const sandboxId = newSandboxId()
    const envdAccessToken = newToken()
    created.push(sandboxId)
    tokens.set(sandboxId, envdAccessToken)
    const res = await client().create({ sandboxId, templateId: 'base', envdAccessToken })
    healthy.push(res.sandbox!)
  }
  for (const s of healthy) {
    const sbx = sdkFor(s)
    await sbx.files.write('/home/user/before.txt', `written in ${s.sandboxId}\n`)
    await sbx.commands.run('sleep 1234', { background: true })
  }

  // SIGKILL in the middle of a third create, once its bundle is written:
  // while runc starts it or the node waits for its first process.
  const half1 = await killDuringCreate(p, 'config.json')
  p = startOrchestrator(0)
  await waitReady(p)
  await expectAdoptedAndClean(healthy, half1)

  // Again, now earlier: the sandbox directory exists, its root may be
  // mounting, and (no warm slots) its network was built for it just before.
  const half2 = await killDuringCreate(p, '')
  p = startOrchestrator(0)
  await waitReady(p)
  await expectAdoptedAndClean(healthy, half2)

  // New creates get fresh addresses next to the adopted ones.
  const fresh = newSandboxId()
  created.push(fresh)
  tokens.set(fresh, newToken())
  const made = (
    await client().create({
      sandboxId: fresh,
      templateId: 'base',
      envdAccessToken: tokens.get(fresh),
    })
  ).sandbox!
  expect(healthy.map((h) => h.address)).not.toContain(made.address)
  expect(await sh(sdkFor(made), 'echo fresh')).toBe('fresh\n')

  // Kill everything over RPC, stop the node, and nothing is left.
  for (const s of (await client().list({})).sandboxes)
    await client().kill({ sandboxId: s.sandboxId })
  p.child.kill('SIGTERM')
  await exited(p.child)
  expect(p.child.exitCode).toBe(0)
  await cleanupHost(prefix, dataDir)
})
