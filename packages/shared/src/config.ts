import { availableParallelism, hostname, totalmem } from 'node:os'
import { z } from 'zod'
import { checkTlsPair, cluster, clusterEnv, internalTls, internalTlsEnv } from './cluster/config.js'
import { WarrenError } from './errors.js'

/**
 * Configuration of every component: a zod schema with the embedded defaults,
 * filled from `WARREN_*` environment variables and then from explicit
 * overrides (CLI flags, tests). Invalid values fail at start-up with the
 * variable's name.
 */

const port = z.coerce.number().int().min(1).max(65535)

/** `true`/`false` (or 1/0) from the environment; z.coerce.boolean would read "false" as true. */
const flag = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1'),
])

export const orchestratorConfigSchema = z.object({
  nodeId: z.string().min(1).default(hostname()),
  /** Everything the node writes: sandboxes, snapshots, runc state. */
  dataDir: z.string().min(1).default('/var/lib/warren'),
  /** Built templates; shared by every node process on the machine. */
  templatesDir: z.string().min(1).optional(),
  /**
   * Names this node's host objects (netns, veth, runc containers, cgroups)
   * so that reconciliation only ever touches its own.
   */
  prefix: z
    .string()
    .regex(/^[a-z][a-z0-9]{0,3}$/, 'one letter then up to three lowercase alphanumerics')
    .default('wr'),
  /** Sandbox addresses: one /30 per sandbox (host side .1, sandbox .2). */
  addressPool: z.string().default('10.11.0.0/16'),
  listenHost: z.string().default('127.0.0.1'),
  rpcPort: port.default(5008),
  nodeProxyPort: port.default(5007),
  /**
   * Processes that accept and forward the node proxy's connections; unset:
   * one per core for `warren orchestrator`, 1 (this process) for `warren
   * up`, whose edge reaches its node without the node proxy.
   */
  nodeProxyWorkers: z.coerce.number().int().min(1).max(256).optional(),
  /** The node proxy's relay for plain requests, as the edge's (WARREN_PROXY_RELAY). */
  proxyRelay: flag.default(true),
  /** Sandbox root maps to this host uid (and gid); templates are shifted to it at build time. */
  uidBase: z.coerce.number().int().min(1).default(100000),
  memoryCapacityMb: z.coerce
    .number()
    .int()
    .positive()
    .default(Math.max(512, Math.floor(totalmem() / 2 ** 20) - 1024)),
  /** The host directory holding envd's bundle, mounted read-only at /opt/warren/envd. */
  envdDir: z.string().optional(),
  /** The Node binary mounted read-only at /opt/warren/bin/node. */
  nodePath: z.string().default(process.execPath),
  /** A static init (tini) mounted at /opt/warren/bin/tini, the sandbox's process 1. */
  initPath: z.string().default('/usr/bin/tini-static'),
  /**
   * The sandbox's first process instead of envd (argv inside the sandbox).
   * It must listen on `readyPort`; envd's /init is then not called.
   */
  sandboxCommand: z.array(z.string()).min(1).optional(),
  readyPort: port.default(49983),
  /** Network namespaces kept ready so that a create does not build one. */
  warmNetworkSlots: z.coerce.number().int().min(0).max(64).default(4),
  /**
   * The IPv4 GSO/GRO size limit of both ends of a sandbox's veth (Linux
   * 6.3+'s BIG TCP): TCP between the host and the sandbox moves in packets
   * this large inside the kernel, fewer of them per byte. 65536 is the
   * kernel's default; the most a veth takes is 524280.
   */
  sandboxGsoMaxSize: z.coerce.number().int().min(65536).max(524280).default(262144),
  /**
   * Warm sandboxes kept started per template, `templateId=count,...`
   * (WARREN_WARM_POOL, e.g. `base=2`): a create of that template with its
   * defaults claims one instead of booting. Their memory counts against the
   * node's capacity. Empty (the default): no pool.
   */
  warmPool: z
    .preprocess(
      (v) => (typeof v === 'string' ? parseWarmPool(v) : v),
      z.record(
        z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a template id'),
        z.number().int().min(0).max(64),
      ),
    )
    .default({}),
  /**
   * A template not claimed from for this long keeps one warm sandbox fewer
   * per such period, down to none; its next create restores the full size.
   */
  warmPoolIdleMs: z.coerce.number().int().min(1000).default(600_000),
  /** Upper bound of sandbox creates running at once on this node. */
  maxConcurrentCreates: z.coerce.number().int().min(1).max(256).default(32),
  /** Template builds running at once on this node; more wait (status `waiting`). */
  maxConcurrentBuilds: z.coerce.number().int().min(1).max(64).default(2),
  /**
   * Memory frozen (paused) sandboxes may hold; past it the oldest are dropped
   * to files-only snapshots. Default: a quarter of the memory capacity.
   */
  maxFrozenMemoryMb: z.coerce.number().int().min(0).optional(),
  /** Inodes of a sandbox's disk per MB of its size (ext4's default ratio is 64). */
  diskInodesPerMb: z.coerce.number().int().min(1).max(1024).default(64),
  /**
   * Free space the data disk keeps: a create is refused below it (sandbox
   * disks are sparse images that grow into the data disk as they fill).
   */
  diskReserveMb: z.coerce.number().int().min(0).default(1024),
  /**
   * The most one layer of a pulled image may take once unpacked: a bigger
   * one fails its build (a hostile image must not fill the disk; pulls also
   * stop at the disk reserve).
   */
  maxImageLayerMb: z.coerce.number().int().min(1).default(8192),
  /** Warren's DNS for sandboxes (reached as <gateway>:53 from inside). */
  dnsPort: port.default(5053),
  /** The egress proxy: plain HTTP (redirected port 80) and TLS (port 443). */
  egressHttpPort: port.default(5080),
  egressTlsPort: port.default(5443),
  /**
   * The egress proxy hands the rest of a large plain-HTTP body of known
   * length to the kernel (splice, built with the shared package by
   * node-gyp); false: copied through the process.
   */
  egressKernelCarry: flag.default(true),
  /**
   * Resolvers Warren's DNS and egress proxy forward to, `ip[:port],...`;
   * default: the host's /etc/resolv.conf.
   */
  dnsUpstreams: z.string().optional(),
  ...cluster,
  ...internalTls,
  /**
   * The API's internal RPC the node registers and heartbeats with
   * (`url[,url…]`, tried in turn); unset, the node only answers (a control
   * plane that lists it in WARREN_NODES polls it).
   */
  apiInternalUrl: z.string().min(1).optional(),
  /**
   * The host the control plane and edge proxies reach this node at, in the
   * URLs it registers; default the listen host (required when that is a
   * wildcard such as 0.0.0.0).
   */
  advertiseHost: z.string().min(1).optional(),
  heartbeatIntervalMs: z.coerce.number().int().min(100).max(60_000).default(2000),
  /**
   * The shared snapshot store: a directory every node mounts (NFS or the
   * like). Each pause publishes the sandbox's snapshot there, so it can
   * resume on another node even when its own is gone.
   */
  snapshotStore: z.string().min(1).optional(),
  /** How often the node looks whether each running sandbox's first process is still alive. */
  exitWatchIntervalMs: z.coerce.number().int().min(50).max(60_000).default(1000),
  /**
   * gVisor's platform for `gvisor` sandboxes: `auto` (KVM when a trial
   * sandbox starts on it, else ptrace), `kvm`, `ptrace`, or `off` (the node
   * offers runc only). Without runsc installed the node offers runc only.
   */
  gvisorPlatform: z.enum(['auto', 'kvm', 'ptrace', 'off']).default('auto'),
  /**
   * `on`: gVisor sandboxes keep their processes through snapshots, forks and
   * moves to another node (runsc checkpoint/restore, see sandboxes/checkpoint.ts);
   * `off`: files only, as runc's.
   */
  gvisorMemorySnapshots: z.enum(['on', 'off']).default('on'),
  /** Prometheus may scrape the node's /metrics with this token instead of the cluster secret. */
  metricsToken: z.string().min(16).optional(),
})

export type OrchestratorConfig = z.infer<typeof orchestratorConfigSchema>

/**
 * `templateId=count,...` as a record; anything malformed is returned as the
 * string itself, so the schema's error names the variable.
 */
function parseWarmPool(value: string): unknown {
  const out: Record<string, number> = {}
  for (const part of value.split(',').map((p) => p.trim())) {
    if (!part) continue
    const m = /^([^=\s]+)=(\d{1,3})$/.exec(part)
    if (!m) return value
    out[m[1]!] = Number(m[2])
  }
  return out
}

const orchestratorEnv: Record<string, keyof OrchestratorConfig> = {
  WARREN_NODE_ID: 'nodeId',
  WARREN_DATA_DIR: 'dataDir',
  WARREN_TEMPLATES_DIR: 'templatesDir',
  WARREN_NODE_PREFIX: 'prefix',
  WARREN_ADDRESS_POOL: 'addressPool',
  WARREN_LISTEN_HOST: 'listenHost',
  WARREN_ORCHESTRATOR_PORT: 'rpcPort',
  WARREN_NODE_PROXY_PORT: 'nodeProxyPort',
  WARREN_NODE_PROXY_WORKERS: 'nodeProxyWorkers',
  WARREN_PROXY_RELAY: 'proxyRelay',
  WARREN_UID_BASE: 'uidBase',
  WARREN_MEMORY_CAPACITY_MB: 'memoryCapacityMb',
  WARREN_ENVD_DIR: 'envdDir',
  WARREN_WARM_NETWORK_SLOTS: 'warmNetworkSlots',
  WARREN_SANDBOX_GSO_MAX_SIZE: 'sandboxGsoMaxSize',
  WARREN_WARM_POOL: 'warmPool',
  WARREN_WARM_POOL_IDLE_MS: 'warmPoolIdleMs',
  WARREN_MAX_CONCURRENT_CREATES: 'maxConcurrentCreates',
  WARREN_MAX_CONCURRENT_BUILDS: 'maxConcurrentBuilds',
  WARREN_MAX_FROZEN_MEMORY_MB: 'maxFrozenMemoryMb',
  WARREN_DISK_INODES_PER_MB: 'diskInodesPerMb',
  WARREN_DISK_RESERVE_MB: 'diskReserveMb',
  WARREN_MAX_IMAGE_LAYER_MB: 'maxImageLayerMb',
  WARREN_DNS_PORT: 'dnsPort',
  WARREN_EGRESS_HTTP_PORT: 'egressHttpPort',
  WARREN_EGRESS_TLS_PORT: 'egressTlsPort',
  WARREN_EGRESS_KERNEL_CARRY: 'egressKernelCarry',
  WARREN_DNS_UPSTREAMS: 'dnsUpstreams',
  WARREN_API_INTERNAL_URL: 'apiInternalUrl',
  WARREN_ADVERTISE_HOST: 'advertiseHost',
  WARREN_HEARTBEAT_INTERVAL_MS: 'heartbeatIntervalMs',
  WARREN_EXIT_WATCH_INTERVAL_MS: 'exitWatchIntervalMs',
  WARREN_GVISOR_PLATFORM: 'gvisorPlatform',
  WARREN_GVISOR_MEMORY_SNAPSHOTS: 'gvisorMemorySnapshots',
  WARREN_SNAPSHOT_STORE: 'snapshotStore',
  WARREN_METRICS_TOKEN: 'metricsToken',
  ...clusterEnv,
  ...internalTlsEnv,
}

export function loadOrchestratorConfig(
  overrides: Partial<OrchestratorConfig> = {},
  env: NodeJS.ProcessEnv = process.env,
): OrchestratorConfig {
  const cfg = parseConfig(orchestratorConfigSchema, orchestratorEnv, overrides, env)
  checkTlsPair(cfg)
  return cfg
}

export function parseConfig<S extends z.ZodObject>(
  schema: S,
  envNames: Record<string, string>,
  overrides: object,
  env: NodeJS.ProcessEnv,
): z.infer<S> {
  const fromEnv: Record<string, unknown> = {}
  for (const [name, key] of Object.entries(envNames)) {
    const value = env[name]
    if (value !== undefined && value !== '') fromEnv[key] = value
  }
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined))
  const result = schema.safeParse({ ...fromEnv, ...defined })
  if (!result.success) {
    const issue = result.error.issues[0]
    const key = String(issue?.path[0] ?? '')
    const envName = Object.entries(envNames).find(([, k]) => k === key)?.[0]
    throw new WarrenError(
      'invalid_argument',
      `invalid configuration ${key}${envName ? ` (${envName})` : ''}: ${issue?.message}`,
    )
  }
  return result.data
}

/**
 * The address of a public listener; unset: both loopbacks (see
 * DEFAULT_LISTEN_HOSTS). Set, it means exactly that address.
 */
const publicListenHost = z.string().min(1).optional()

export const apiConfigSchema = z.object({
  listenHost: publicListenHost,
  port: port.default(3000),
  /** Internal RPC for proxies (resume, keepalive, catalog). */
  internalPort: port.default(5009),
  dataDir: z.string().min(1).default('/var/lib/warren'),
  /**
   * The store: `sqlite:<path>` (default <dataDir>/warren.db, one API process)
   * or `postgres://…` (any number of API replicas).
   */
  database: z.string().optional(),
  /** Domain of sandbox hosts `{port}-{id}.{domain}` reported to clients. */
  domain: z.string().optional(),
  /** Orchestrators to place sandboxes on: `id=url,id=url` (the all-in-one wires its own). */
  nodes: z.string().optional(),
  defaultTimeoutS: z.coerce.number().int().positive().default(300),
  /** Per-team defaults for new teams. */
  maxLifetimeS: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 3600),
  maxConcurrentSandboxes: z.coerce.number().int().positive().default(100),
  /** How long a killed sandbox is remembered (and answered precisely about). */
  tombstoneTtlS: z.coerce.number().int().nonnegative().default(3600),
  /** Expiries (kill or pause at endAt) running at once. */
  maxConcurrentExpiries: z.coerce.number().int().min(1).max(256).default(8),
  /** How often the store is compared with what the nodes run. */
  nodeSyncIntervalS: z.coerce.number().int().min(1).max(3600).default(30),
  /** Size of a new volume (its disk image) when the create names none, in MB. */
  volumeSizeMb: z.coerce
    .number()
    .int()
    .min(16)
    .max(1024 * 1024)
    .default(1024),
  ...cluster,
  ...internalTls,
  /** Prometheus may scrape /metrics with this token instead of the cluster secret. */
  metricsToken: z.string().min(16).optional(),
  /** A node whose last heartbeat is older than this gets no placements. */
  nodeUnhealthyAfterS: z.coerce.number().min(0.5).max(3600).default(10),
  /**
   * The grace period: a node silent this long is declared lost and its
   * sandboxes are reported lost (`node_lost`).
   */
  nodeLostAfterS: z.coerce.number().min(1).max(86_400).default(60),
  /** How often the API asks the nodes it polls (WARREN_NODES, the all-in-one's) for their status. */
  nodePollIntervalMs: z.coerce.number().int().min(100).max(60_000).default(2000),
  /** How long lifecycle events (and finished webhook deliveries) are kept, in seconds. */
  eventsRetentionS: z.coerce.number().int().min(60).default(86_400),
  /**
   * Webhook deliveries may go to loopback and private addresses (an
   * operator's internal receiver). Off by default: a team's webhook URL must
   * not make the API reach into its own network. Link-local (cloud
   * metadata), multicast and unspecified addresses are refused always.
   */
  webhookAllowPrivate: flag.default(false),
  /** Webhook deliveries one API replica makes at once. */
  webhookConcurrency: z.coerce.number().int().min(1).max(256).default(8),
  /** Attempts of a delivery before it is given up (the next one of its sandbox goes on). */
  webhookMaxAttempts: z.coerce.number().int().min(1).max(100).default(10),
  /** The first retry's delay; each next one doubles, up to 10 minutes. */
  webhookRetryBaseMs: z.coerce.number().int().min(10).max(600_000).default(1000),
})

export type ApiConfig = z.infer<typeof apiConfigSchema>

const apiEnv: Record<string, keyof ApiConfig> = {
  WARREN_LISTEN_HOST: 'listenHost',
  WARREN_API_PORT: 'port',
  WARREN_API_INTERNAL_PORT: 'internalPort',
  WARREN_DATA_DIR: 'dataDir',
  // The older name first: WARREN_DATABASE_URL wins when both are set.
  WARREN_DATABASE: 'database',
  WARREN_DATABASE_URL: 'database',
  WARREN_DOMAIN: 'domain',
  WARREN_NODES: 'nodes',
  WARREN_DEFAULT_TIMEOUT: 'defaultTimeoutS',
  WARREN_MAX_LIFETIME: 'maxLifetimeS',
  WARREN_MAX_CONCURRENT_SANDBOXES: 'maxConcurrentSandboxes',
  WARREN_MAX_CONCURRENT_EXPIRIES: 'maxConcurrentExpiries',
  WARREN_TOMBSTONE_TTL: 'tombstoneTtlS',
  WARREN_NODE_SYNC_INTERVAL: 'nodeSyncIntervalS',
  WARREN_VOLUME_SIZE_MB: 'volumeSizeMb',
  WARREN_METRICS_TOKEN: 'metricsToken',
  WARREN_NODE_UNHEALTHY_AFTER: 'nodeUnhealthyAfterS',
  WARREN_NODE_LOST_AFTER: 'nodeLostAfterS',
  WARREN_NODE_POLL_INTERVAL_MS: 'nodePollIntervalMs',
  WARREN_EVENTS_RETENTION: 'eventsRetentionS',
  WARREN_WEBHOOK_ALLOW_PRIVATE: 'webhookAllowPrivate',
  WARREN_WEBHOOK_CONCURRENCY: 'webhookConcurrency',
  WARREN_WEBHOOK_MAX_ATTEMPTS: 'webhookMaxAttempts',
  WARREN_WEBHOOK_RETRY_BASE_MS: 'webhookRetryBaseMs',
  ...clusterEnv,
  ...internalTlsEnv,
}

export function loadApiConfig(overrides: Partial<ApiConfig> = {}, env = process.env): ApiConfig {
  const cfg = parseConfig(apiConfigSchema, apiEnv, overrides, env)
  checkTlsPair(cfg)
  if (cfg.nodeLostAfterS <= cfg.nodeUnhealthyAfterS) {
    throw new WarrenError(
      'invalid_argument',
      'invalid configuration: WARREN_NODE_LOST_AFTER must be longer than WARREN_NODE_UNHEALTHY_AFTER',
    )
  }
  return cfg
}

export const proxyConfigSchema = z.object({
  listenHost: publicListenHost,
  port: port.default(3002),
  /** Where the proxy keeps its CA (`<dataDir>/pki/proxy-ca`). */
  dataDir: z.string().min(1).default('/var/lib/warren'),
  /** Sandbox hosts are `{port}-{id}.{domain}`; default `localhost:{port}`. */
  domain: z.string().min(1).optional(),
  /**
   * An operator's certificate (PEM, chain included) and key for
   * `*.{domain}`; without them the proxy's own CA signs a certificate per
   * requested name.
   */
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  /** The API's internal RPC, for the catalog, resume and keepalive. */
  apiInternalUrl: z.string().default('http://127.0.0.1:5009'),
  /** Client addresses are taken from X-Forwarded-For only behind this many trusted proxies. */
  trustedHops: z.coerce.number().int().min(0).max(10).default(0),
  /** At most one keepalive report per sandbox per this interval. */
  keepaliveIntervalMs: z.coerce.number().int().min(100).max(60_000).default(1000),
  /** Prometheus may scrape the edge's /metrics with this token instead of the cluster secret. */
  metricsToken: z.string().min(16).optional(),
  /**
   * Processes that accept and forward the edge's connections: one per core
   * by default; 1 keeps everything in this process.
   */
  workers: z.coerce.number().int().min(1).max(256).default(availableParallelism()),
  /**
   * Plain requests (no body, HTTP/1.1) take the relay, Node's HTTP server
   * the rest; `false`: the HTTP server takes every request (see createRelay).
   */
  relay: flag.default(true),
  /**
   * After a plain request, its connection is carried on in C (see
   * NativePins) while its requests go the same way; `false`: the relay
   * carries every request in JavaScript.
   */
  nativeRelay: flag.default(true),
  ...cluster,
})

export type ProxyConfig = z.infer<typeof proxyConfigSchema>

const proxyEnv: Record<string, keyof ProxyConfig> = {
  WARREN_LISTEN_HOST: 'listenHost',
  WARREN_PROXY_PORT: 'port',
  WARREN_API_INTERNAL_URL: 'apiInternalUrl',
  WARREN_TRUSTED_HOPS: 'trustedHops',
  WARREN_KEEPALIVE_INTERVAL_MS: 'keepaliveIntervalMs',
  WARREN_DATA_DIR: 'dataDir',
  WARREN_DOMAIN: 'domain',
  WARREN_TLS_CERT: 'tlsCert',
  WARREN_TLS_KEY: 'tlsKey',
  WARREN_METRICS_TOKEN: 'metricsToken',
  WARREN_PROXY_WORKERS: 'workers',
  WARREN_PROXY_RELAY: 'relay',
  WARREN_PROXY_NATIVE_RELAY: 'nativeRelay',
  ...clusterEnv,
}

export function loadProxyConfig(
  overrides: Partial<ProxyConfig> = {},
  env = process.env,
): ProxyConfig & { domain: string } {
  const cfg = parseConfig(proxyConfigSchema, proxyEnv, overrides, env)
  if (!cfg.tlsCert !== !cfg.tlsKey) {
    throw new WarrenError(
      'invalid_argument',
      'invalid configuration: WARREN_TLS_CERT and WARREN_TLS_KEY go together',
    )
  }
  return { ...cfg, domain: cfg.domain ?? `localhost:${cfg.port}` }
}

/**
 * Every WARREN_* variable each command reads (WARREN_LOG_LEVEL: log.ts; the
 * Debian mirror: `warren template build`). The README's table and the
 * deployment files under deploy/ are checked against it.
 */
export const configVariables = {
  api: [...Object.keys(apiEnv), 'WARREN_LOG_LEVEL'],
  orchestrator: [...Object.keys(orchestratorEnv), 'WARREN_LOG_LEVEL'],
  proxy: [...Object.keys(proxyEnv), 'WARREN_LOG_LEVEL'],
  cli: ['WARREN_DEBIAN_MIRROR'],
} as const satisfies Record<string, readonly string[]>
