// A real SandboxNode for end-to-end tests: its own node prefix, data
// directory and address pool, the shared (read-only) base template, and a
// teardown that kills what is left and then proves nothing of the prefix
// remains on the host. Privileged: needs root, runc, ip and nft.
import { execFileSync } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { type CreateInput, createNode, type NodeHost, type SandboxNode } from '@warren/orchestrator'
import {
  createLogger,
  loadOrchestratorConfig,
  newSandboxId,
  newToken,
  type OrchestratorConfig,
} from '@warren/shared'
import { Sandbox } from 'e2b'
import { afterAll, beforeAll } from 'vitest'
import { sandboxLedger } from './sandbox-ledger.js'

/**
 * The built templates the suites use: the machine's shared ones, unless
 * WARREN_TEST_TEMPLATES_DIR names others (a worktree whose template recipe
 * differs from the shared build's keeps its own, instead of rebuilding the
 * shared one under the other worktrees).
 */
export const TEMPLATES_DIR = process.env.WARREN_TEST_TEMPLATES_DIR || '/var/lib/warren/templates'
export const ENVD_PORT = 49983

/** A running sandbox's record, as a create returns it: its addresses are known. */
export type SandboxRecord = Awaited<ReturnType<SandboxNode['create']>> & {
  sandboxIp: string
  hostIp: string
}

const usedPrefixes = new Set<string>()
const usedPools = new Set<number>()

/** `t` + 3 lowercase alphanumerics, unique in this process. */
export function uniquePrefix(): string {
  for (;;) {
    const alnum = 'abcdefghijklmnopqrstuvwxyz0123456789'
    let p = 't'
    for (const b of randomBytes(3)) p += alnum[b % alnum.length]
    if (!usedPrefixes.has(p)) {
      usedPrefixes.add(p)
      return p
    }
  }
}

/**
 * A /16 in 10.200-250.0.0 (sized down with `bits`), unique in this process
 * and not overlapping addresses already on this host (another node, perhaps
 * another suite's, running at the same time).
 */
export function uniquePool(bits = 16): string {
  const onHost = new Set(
    [
      ...execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }).matchAll(
        /inet 10\.(\d+)\./g,
      ),
    ].map((m) => Number(m[1])),
  )
  for (let tries = 0; ; tries++) {
    if (tries > 500) throw new Error('no free test address pool in 10.200-250.0.0/16')
    const second = randomInt(200, 251)
    if (!usedPools.has(second) && !onHost.has(second) && claim('pools', second)) {
      usedPools.add(second)
      return `10.${second}.0.0/${bits}`
    }
  }
}

/**
 * Claims a resource (an address pool, a port) for this test process against
 * test processes of other suites or worktrees running at the same time: a
 * file named after it holds the claimer's pid; a claim whose process is gone
 * is taken over. Claims last as long as the process.
 */
function claim(kind: string, value: number): boolean {
  const dir = join('/tmp/warren-test-claims', kind)
  mkdirSync(dir, { recursive: true })
  const path = join(dir, String(value))
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' })
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number(readFileSync(path, 'utf8'))
      if (owner === process.pid || (owner && isAlive(owner))) return false
      rmSync(path, { force: true })
    }
  }
  return false
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export interface NodeFixture {
  node: SandboxNode
  cfg: OrchestratorConfig
  prefix: string
  dataDir: string
  /** Every sandbox id this fixture created (or tried to), in order. */
  created: string[]
  /** Creates a sandbox of `base` with a fresh id and access token. */
  create(input?: Partial<CreateInput>): Promise<SandboxRecord>
  /** The access token a sandbox was created with. */
  token(sandboxId: string): string | undefined
  /** The official SDK talking straight to a sandbox's envd. */
  sdk(record: SandboxRecord): Sandbox
  /** Kills what is left, stops the node, asserts no leftovers, removes the data dir. */
  teardown(): Promise<void>
}

export interface FixtureOptions {
  /** Config overrides (prefix, pool and dataDir are chosen unless given). */
  config?: Partial<OrchestratorConfig>
  /** Start the node (default true). */
  start?: boolean
  /** The node's host (default: the machine's, built from the config). */
  host?: (cfg: OrchestratorConfig) => NodeHost
  /** Told every sandbox id `create` makes (or tries to). */
  onCreate?: (sandboxId: string) => void
}

/** Starts a node with its own prefix, pool and data directory. */
export async function startNodeFixture(opts: FixtureOptions = {}): Promise<NodeFixture> {
  const prefix = opts.config?.prefix ?? uniquePrefix()
  const dataDir = opts.config?.dataDir ?? mkdtempSync(`/tmp/warren-${prefix}-`)
  const cfg = loadOrchestratorConfig(
    {
      nodeId: `test-${prefix}`,
      addressPool: uniquePool(),
      templatesDir: TEMPLATES_DIR,
      warmNetworkSlots: 2,
      ...(await servicePorts()),
      ...opts.config,
      prefix,
      dataDir,
    },
    {},
  )
  const log = createLogger(`node-${prefix}`, 'warn')
  const node = createNode(cfg, { log, ...(opts.host ? { host: opts.host(cfg) } : {}) })
  const created: string[] = []
  const tokens = new Map<string, string>()
  const fixture: NodeFixture = {
    node,
    cfg,
    prefix,
    dataDir,
    created,
    async create(input = {}) {
      const sandboxId = input.sandboxId ?? newSandboxId()
      const envdAccessToken = input.envdAccessToken ?? newToken()
      created.push(sandboxId)
      opts.onCreate?.(sandboxId)
      tokens.set(sandboxId, envdAccessToken)
      const record = await node.create({
        templateId: 'base',
        ...testIsolation(),
        ...input,
        sandboxId,
        envdAccessToken,
      })
      if (!record.sandboxIp || !record.hostIp) {
        throw new Error(`sandbox ${sandboxId} was created without an address`)
      }
      return record as SandboxRecord
    },
    token: (id) => tokens.get(id),
    sdk: (record) => envdClient(record, tokens.get(record.sandboxId)),
    async teardown() {
      try {
        await destroyNode(node, prefix, dataDir)
      } catch (err) {
        if (created.length) console.error(`[${prefix}] sandboxes created: ${created.join(' ')}`)
        throw err
      }
    },
  }
  if (opts.start !== false) {
    try {
      await node.start()
    } catch (err) {
      await fixture.teardown().catch((e) => console.error(e))
      throw err
    }
  }
  return fixture
}

/**
 * One fixture per test file (or describe block): started before the tests,
 * torn down after them. As with `useSandboxes`, what a test creates is killed
 * after it (what a beforeAll creates, after the file), and a failing test logs
 * the ids it created.
 */
export function useNodeFixture(opts: FixtureOptions = {}): () => NodeFixture {
  let fixture: NodeFixture | undefined
  beforeAll(async () => {
    fixture = await startNodeFixture({ ...opts, onCreate: (id) => record(id) })
  })
  afterAll(async () => {
    await fixture?.teardown()
  })
  // Registered after the teardown, so that its after-hooks run before it.
  const record = sandboxLedger(
    () => fixture?.prefix ?? 'node',
    async (id) => {
      if (fixture?.node.list().some((r) => r.sandboxId === id)) await fixture.node.kill(id)
    },
  )
  return () => {
    if (!fixture) throw new Error('node fixture not started')
    return fixture
  }
}

/** The official SDK in debug mode, talking to a sandbox's envd at its own address. */
export function envdClient(
  record: { sandboxId: string; envdVersion: string; sandboxIp: string },
  envdAccessToken: string | undefined,
): Sandbox {
  return new Sandbox({
    sandboxId: record.sandboxId,
    envdVersion: record.envdVersion,
    ...(envdAccessToken ? { envdAccessToken } : {}),
    debug: true,
    sandboxUrl: `http://${record.sandboxIp}:${ENVD_PORT}`,
  })
}

/** Kills every sandbox of the node, stops it, then proves the host is clean and tidies up. */
export async function destroyNode(node: SandboxNode, prefix: string, dataDir: string) {
  const errors: unknown[] = []
  for (const r of node.list()) {
    await node.kill(r.sandboxId).catch((err) => errors.push(err))
  }
  await node.stop().catch((err) => errors.push(err))
  await cleanupHost(prefix, dataDir, errors)
}

/**
 * Asserts nothing of the prefix is left, then removes the data directory,
 * the node's host table and its (empty) cgroup parents. Also for nodes run as
 * a separate process, after that process is gone.
 */
export async function cleanupHost(prefix: string, dataDir: string, errors: unknown[] = []) {
  try {
    await assertNoLeftovers(prefix, dataDir, { nodeGone: true })
  } catch (err) {
    errors.push(err)
  }
  // Only tidy when nothing is mounted below: never recurse into a live overlay.
  if (mountsUnder(dataDir).length === 0) rmSync(dataDir, { recursive: true, force: true })
  // The node's table, and any gVisor sandbox's a failed test left.
  for (const table of [`warren_${prefix}`, ...gvisorTables(prefix)]) {
    try {
      execFileSync('nft', ['delete', 'table', 'inet', table], { stdio: 'ignore' })
    } catch {
      // already gone
    }
  }
  for (const dir of cgroupDirs(prefix)) {
    try {
      rmdirSync(dir)
    } catch {
      // not empty: reported by assertNoLeftovers
    }
  }
  if (errors.length) {
    throw new AggregateError(errors, `[${prefix}] teardown: ${errors.map(String).join('; ')}`)
  }
}

/**
 * What of a node's sandboxes is still on the host; empty when clean. With
 * `nodeGone`, what the node itself holds while it runs (its envd store) counts too.
 */
export function hostLeftovers(
  prefix: string,
  dataDir: string,
  opts = { nodeGone: false },
): string[] {
  const left: string[] = []
  const slot = new RegExp(`^${prefix}-[nv]\\d+$`)
  if (existsSync('/run/netns')) {
    const netns = readdirSync('/run/netns').filter((n) => slot.test(n))
    left.push(...netns.map((n) => `netns ${n}`))
  }
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as {
    ifname: string
  }[]
  left.push(...links.filter((l) => slot.test(l.ifname)).map((l) => `link ${l.ifname}`))
  for (const runtime of ['runc', 'runsc']) {
    const root = join(dataDir, runtime)
    if (!existsSync(root)) continue
    // Its complaints about a container deleted while it looked are not leftovers.
    const out = execFileSync(runtime, ['--root', root, 'list', '--format', 'json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim()
    const containers = (JSON.parse(out || 'null') as { id: string; status: string }[] | null) ?? []
    const kind = runtime === 'runc' ? 'container' : 'gvisor container'
    left.push(...containers.map((c) => `${kind} ${c.id} (${c.status})`))
  }
  // gVisor sandboxes' rules, on the host side of their veths.
  left.push(...gvisorTables(prefix).map((n) => `nft table ${n}`))
  // The data directory itself may be a filesystem a test gave it.
  const nodeMounts = opts.nodeGone ? [dataDir] : [dataDir, join(dataDir, 'envd')]
  left.push(
    ...mountsUnder(dataDir)
      .filter((m) => !nodeMounts.includes(m))
      .map((m) => `mount ${m}`),
  )
  left.push(...loopDevicesUnder(dataDir).map((l) => `loop device ${l}`))
  for (const dir of cgroupDirs(prefix)) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) left.push(`cgroup ${join(dir, e.name)}`)
    }
  }
  left.push(...processesInCgroups(prefix).map((p) => `process ${p}`))
  const sandboxes = join(dataDir, 'sandboxes')
  if (existsSync(sandboxes)) left.push(...readdirSync(sandboxes).map((d) => `sandbox dir ${d}`))
  return left
}

/** The host-side tables of a node's gVisor sandboxes (`warren_<prefix>_g<slot>`). */
function gvisorTables(prefix: string): string[] {
  const out = execFileSync('nft', ['-j', 'list', 'tables'], { encoding: 'utf8' })
  const tables = (JSON.parse(out) as { nftables: Array<{ table?: { name: string } }> }).nftables
  const name = new RegExp(`^warren_${prefix}_g\\d+$`)
  return tables.flatMap((t) => (t.table && name.test(t.table.name) ? [t.table.name] : []))
}

/** Loop devices whose backing file is under `dir` (sandbox disk images). */
export function loopDevicesUnder(dir: string): string[] {
  const out = execFileSync('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE'], {
    encoding: 'utf8',
  }).trim()
  const devices =
    (JSON.parse(out || '{}') as { loopdevices?: { name: string; 'back-file': string | null }[] })
      .loopdevices ?? []
  return devices
    .filter((d) => d['back-file']?.replace(/ \(deleted\)$/, '').startsWith(`${dir}/`))
    .map((d) => `${d.name} (${d['back-file']})`)
}

/**
 * Throws when anything of the prefix remains: namespaces, veths, runc
 * containers, mounts under the data dir, cgroups, processes, sandbox dirs.
 * Network namespaces and cgroups are released by the kernel asynchronously, so
 * this looks again for a short while before it fails.
 */
export async function assertNoLeftovers(
  prefix: string,
  dataDir: string,
  opts = { nodeGone: false },
): Promise<void> {
  let left = hostLeftovers(prefix, dataDir, opts)
  for (let i = 0; i < 20 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 100))
    left = hostLeftovers(prefix, dataDir, opts)
  }
  if (left.length) throw new Error(`[${prefix}] left on the host:\n  ${left.join('\n  ')}`)
}

/** `/sys/fs/cgroup/<controller>/warren/<prefix>` (v1) or `/sys/fs/cgroup/warren/<prefix>` (v2). */
export function cgroupDirs(prefix: string): string[] {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
  const roots = v2
    ? ['/sys/fs/cgroup']
    : readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c))
  return roots.map((r) => join(r, 'warren', prefix)).filter((d) => existsSync(d))
}

/** A running sandbox's network namespace and the host end of its veth, from its record's slot. */
export function sandboxLink(
  node: { dataDir: string; prefix: string },
  sandboxId: string,
): { netns: string; hostIf: string } {
  const { slotIndex } = JSON.parse(
    readFileSync(join(node.dataDir, 'sandboxes', sandboxId, 'sandbox.json'), 'utf8'),
  ) as { slotIndex: number }
  return { netns: `${node.prefix}-n${slotIndex}`, hostIf: `${node.prefix}-v${slotIndex}` }
}

/** A sandbox's cgroup directory for one controller (v1) or the unified one (v2). */
export function sandboxCgroup(prefix: string, sandboxId: string, controller: string): string {
  return existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? join('/sys/fs/cgroup/warren', prefix, sandboxId)
    : join('/sys/fs/cgroup', controller, 'warren', prefix, sandboxId)
}

/**
 * Live pids (with their command) whose cgroup lies under this node's. Zombies
 * do not count: a container's init is reparented to the host's init when runc
 * detaches, and is reaped on that init's schedule (here, over a second later);
 * it holds neither memory nor its cgroup by then.
 */
function processesInCgroups(prefix: string): string[] {
  const needle = `/warren/${prefix}/`
  const out: string[] = []
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      if (
        readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(needle) &&
        !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
      ) {
        out.push(`${pid} ${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}`)
      }
    } catch {
      // exited meanwhile
    }
  }
  return out
}

/** Mount points at or below `dir`, from this process's mount table. */
export function mountsUnder(dir: string): string[] {
  const prefix = `${dir.replace(/\/$/, '')}/`
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix))
}

/** A port nobody listens on right now (loopback). */
/**
 * A port nothing listens on now, claimed for this process: another test
 * process picking the same port between our close and the listener's bind
 * would otherwise take it (EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer()
      srv.once('error', reject)
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as { port: number }
        srv.close(() => resolve(port))
      })
    })
    if (claim('ports', port)) return port
  }
}

/**
 * Free ports for a node's DNS and egress proxy, and a DNS upstream on
 * loopback where nothing answers: a test node never forwards a sandbox's
 * query to the host's real resolver.
 */
export async function servicePorts() {
  return {
    dnsPort: await freePort(),
    egressHttpPort: await freePort(),
    egressTlsPort: await freePort(),
    dnsUpstreams: `127.0.0.1:${await freePort()}`,
  }
}

/** WARREN_TEST_ISOLATION=gvisor: the fixture's creates run under gVisor unless they name one. */
function testIsolation(): { isolation?: 'gvisor' } {
  return process.env.WARREN_TEST_ISOLATION === 'gvisor' ? { isolation: 'gvisor' } : {}
}
