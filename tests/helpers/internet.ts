// "The internet" for egress tests: network namespaces of our own, joined to
// the host by veths, holding fake hosts on TEST-NET addresses (HTTP, HTTPS
// with a test CA, TCP and UDP echo) and an authoritative DNS server for the
// test domains; plus a host in a private range in a namespace of its own.
//
// Safety: nothing here may send a packet off this machine. The host's own
// network may be TEST-NET-1 (192.0.2.0/24) with a default route out, so that
// range is never used. Before any route or server exists, a guard table drops
// every packet to the fake ranges that would leave by another interface than
// ours; then the routes go in; only then do servers start. Teardown removes
// everything in reverse, also after a failed start, and a later start
// removes what a killed run left (its owner file names a dead pid).
//
// Address plan: each namespace hangs off its own /30 in 10.253.0.0/16 that no
// host interface or route uses (host end .1, namespace end .2). The internet
// namespace holds every fake host's address on its loopback and is reached
// through host routes for 198.51.100.0/24 and 203.0.113.0/24; the private one
// holds 172.31.255.10 (host route /32). Neither has a default route, and
// neither forwards: a packet to an address nobody holds goes nowhere.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'

/** The fake internet's ranges (TEST-NET-2 and -3) and the private host's. */
export const FAKE_RANGES = ['198.51.100.0/24', '203.0.113.0/24'] as const
export const PRIVATE_IP = '172.31.255.10'
const PRIVATE_GUARD = '172.31.255.0/24'

/** The authoritative DNS server of the test domains: Warren's upstream in tests. */
export const DNS_IP = '198.51.100.53'

/** Fake hosts: name → address. Each serves HTTP :80, HTTPS :443, TCP/UDP echo :7. */
export const HOSTS = {
  'allowed.test': '198.51.100.10',
  'api.allowed.test': '198.51.100.11',
  'other.test': '198.51.100.20',
  'wild.test': '198.51.100.30',
  'a.wild.test': '198.51.100.31',
  'b.a.wild.test': '198.51.100.32',
  'ip-a.test': '203.0.113.10',
  'ip-b.test': '203.0.113.20',
  'echo.test': '203.0.113.7',
  /** Listed explicitly in denyOut by the tests. */
  'denied.test': '203.0.113.66',
} as const satisfies Record<string, string>

export type HostName = keyof typeof HOSTS

/** Extra DNS answers that point outside the fake hosts. */
export const DNS_ONLY: Record<string, string> = {
  'private.test': PRIVATE_IP,
  'loopback.test': '127.0.0.1',
  'rebind.test': PRIVATE_IP,
}

/** What a fake host answers on GET /: which address and name served the request. */
export interface Identity {
  /** The address the request arrived at. */
  ip: string
  /** The name that owns that address. */
  name: string
  /** The Host header and TLS SNI the request carried. */
  host: string
  sni: string | null
  tls: boolean
}

export interface Internet {
  ns: string
  privateNs: string
  /** The host end of the internet's veth: an address of this host. */
  hostEnd: string
  /** The test CA's certificate (PEM): sandboxes trust it with `curl --cacert`. */
  caPem: string
  /** DNS answers: every test name (fake hosts and DNS-only names) → address. */
  records: Record<string, string>
  /** Where Warren's DNS forwards: `WARREN_DNS_UPSTREAMS`. */
  dnsUpstream: string
  teardown(): Promise<void>
}

/** Runs a command; throws with its stderr on failure. */
function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(input !== undefined ? { input } : {}),
  })
}

function quiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' })
  } catch {
    // already gone
  }
}

/** Every IPv4 network (address/prefix) on this host, and every route's destination. */
function hostNetworks(): string[] {
  const addrs = JSON.parse(sh('ip', ['-j', '-4', 'addr'])) as Array<{
    addr_info?: Array<{ local: string; prefixlen: number }>
  }>
  const routes = JSON.parse(sh('ip', ['-j', '-4', 'route'])) as Array<{ dst: string }>
  return [
    ...addrs.flatMap((i) => (i.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`)),
    ...routes.map((r) => r.dst).filter((d) => d !== 'default'),
  ]
}

function toInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0)
}

function overlaps(a: string, b: string): boolean {
  const [ia, ba] = a.split('/')
  const [ib, bb] = b.split('/')
  const bits = Math.min(Number(ba ?? 32), Number(bb ?? 32))
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
  return (toInt(ia!) & mask) >>> 0 === (toInt(ib!) & mask) >>> 0
}

/** A /30 in 10.253.0.0/16 that nothing on this host uses: [host end, namespace end]. */
function freeLink(taken: string[]): [string, string] {
  for (let i = 0; i < 1000; i++) {
    const base = `10.253.${randomInt(0, 256)}.${randomInt(0, 64) * 4}`
    if (taken.some((n) => overlaps(n, `${base}/30`))) continue
    const [a, b, c] = base.split('.')
    const d = Number(base.split('.')[3])
    taken.push(`${base}/30`)
    return [`${a}.${b}.${c}.${d + 1}`, `${a}.${b}.${c}.${d + 2}`]
  }
  throw new Error('no free /30 in 10.253.0.0/16')
}

/** Certificates for every test name (and the hosts' addresses), signed by a fresh CA. */
function makeCertificates(dir: string, names: string[], ips: string[]) {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  sh('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    join(dir, 'ca.key'),
    '-out',
    join(dir, 'ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=Warren network tests CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ])
  sh('openssl', [
    'req',
    ...ec,
    '-keyout',
    join(dir, 'server.key'),
    '-out',
    join(dir, 'server.csr'),
    '-subj',
    '/CN=allowed.test',
  ])
  const san = [...names.map((n) => `DNS:${n}`), ...ips.map((ip) => `IP:${ip}`)].join(',')
  writeFileSync(
    join(dir, 'server.ext'),
    `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`,
  )
  sh('openssl', [
    'x509',
    '-req',
    '-in',
    join(dir, 'server.csr'),
    '-CA',
    join(dir, 'ca.pem'),
    '-CAkey',
    join(dir, 'ca.key'),
    '-CAcreateserial',
    '-out',
    join(dir, 'server.pem'),
    '-days',
    '2',
    '-extfile',
    join(dir, 'server.ext'),
  ])
  return {
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    key: readFileSync(join(dir, 'server.key'), 'utf8'),
    cert: readFileSync(join(dir, 'server.pem'), 'utf8'),
  }
}

/** The size of one `patternChunk`. */
export const PATTERN_CHUNK = 1 << 20

/**
 * Piece `index` of the fake hosts' /pattern/<n> body: 32-bit counters
 * (in the machine's byte order) that go on from piece to piece, so no two 4-byte words of a
 * body are alike. Shared as source with the hosts' program: keep it
 * self-contained.
 */
export function patternChunk(index: number): Buffer {
  const words = new Uint32Array(1 << 18)
  for (let i = 0; i < words.length; i++) words[i] = (index * words.length + i) >>> 0
  return Buffer.from(words.buffer)
}

/**
 * The fake hosts' program, run inside a namespace: HTTP on :80 and HTTPS on
 * :443 of every address (answering with the address and name that served),
 * TCP and UDP echo on :7, and, when configured, the authoritative DNS server.
 * Routes: / (identity), /bytes/<n> (n bytes), /pattern/<n> (n bytes of
 * `patternChunk`, so that a lost, repeated or reordered piece shows), /slow
 * (a byte every 100 ms).
 */
const SERVER = `
import { createServer as http } from 'node:http'
import { createServer as https } from 'node:https'
import { createServer as tcp } from 'node:net'
import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const names = cfg.names
const owner = Object.fromEntries(Object.entries(names).map(([n, ip]) => [ip, n]))
const chunk = Buffer.alloc(1 << 20, 120)
const PATTERN_CHUNK = ${PATTERN_CHUNK}
${patternChunk.toString()}

function handler(req, res) {
  const local = (req.socket.localAddress || '').replace(/^::ffff:/, '')
  const tls = !!req.socket.encrypted
  if (req.url.startsWith('/bytes/')) {
    let left = Number(req.url.slice(7)) || 0
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left })
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length)
        left -= n
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return res.once('drain', pump)
      }
      res.end()
    }
    return pump()
  }
  if (req.url.startsWith('/pattern/')) {
    let left = Number(req.url.slice(9)) || 0
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left })
    let index = 0
    const pump = () => {
      while (left > 0) {
        const piece = patternChunk(index++).subarray(0, Math.min(left, PATTERN_CHUNK))
        left -= piece.length
        if (!res.write(piece)) return res.once('drain', pump)
      }
      res.end()
    }
    return pump()
  }
  if (req.url === '/slow') {
    res.writeHead(200, { 'content-type': 'text/plain' })
    let i = 0
    const t = setInterval(() => { res.write('.'); if (++i >= 1200) { clearInterval(t); res.end() } }, 100)
    res.on('close', () => clearInterval(t))
    return
  }
  const body = JSON.stringify({
    ip: local, name: owner[local] ?? '?', host: req.headers.host ?? '',
    sni: tls ? (req.socket.servername || null) : null, tls,
  })
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

const listen = (server, port, host) => new Promise((resolve, reject) => {
  server.once('error', reject)
  server.listen(port, host, resolve)
})

await listen(http(handler), 80, '0.0.0.0')
await listen(https({ key: cfg.key, cert: cfg.cert }, handler), 443, '0.0.0.0')
await listen(tcp((s) => { s.on('error', () => s.destroy()); s.pipe(s) }), 7, '0.0.0.0')
// One UDP socket per address, so that replies come from the address asked.
for (const ip of Object.keys(owner)) {
  const udp = createSocket('udp4')
  udp.on('message', (msg, r) => udp.send(Buffer.concat([Buffer.from('echo:'), msg]), r.port, r.address))
  await new Promise((resolve) => udp.bind(7, ip, resolve))
}

if (cfg.dns) {
  const packet = (await import(pathToFileURL(cfg.dns.module).href)).default
  const records = cfg.dns.records
  const dns = createSocket('udp4')
  dns.on('message', (msg, r) => {
    let q
    try { q = packet.decode(msg) } catch { return }
    const question = q.questions?.[0]
    if (!question) return
    const name = question.name.toLowerCase().replace(/\\.$/, '')
    const ip = records[name]
    const answers = ip && question.type === 'A'
      ? [{ type: 'A', class: 'IN', name: question.name, ttl: 5, data: ip }] : []
    dns.send(packet.encode({
      type: 'response', id: q.id, flags: packet.AUTHORITATIVE_ANSWER | packet.RECURSION_DESIRED,
      rcode: ip ? 'NOERROR' : 'NXDOMAIN', questions: q.questions, answers,
    }), r.port, r.address)
  })
  await new Promise((resolve) => dns.bind(53, cfg.dns.ip, resolve))
}
process.stdout.write('ready\\n')
`

/** Starts the fake hosts' program in a namespace; `ready` resolves once it listens. */
function startServers(
  ns: string,
  configPath: string,
  script: string,
): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script, configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  child.stderr?.on('data', (b: Buffer) => {
    err += b.toString()
  })
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fake hosts in ${ns} did not start`)), 15_000)
    child.stdout?.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`fake hosts in ${ns} exited (${code}): ${err}`))
    })
  })
  return { child, ready }
}

function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGKILL')
  })
}

/** Each live harness leaves `<id>` → its pid here, so debris of a killed run can be told apart. */
const OWNERS = '/run/warren-inet'

function names(id: string) {
  return {
    ns: `${id}-inet`,
    privateNs: `${id}-prv`,
    inetIf: `${id}-ih`,
    prvIf: `${id}-ph`,
    guard: `${id}_guard`,
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Removes what harnesses whose process is gone left behind (a test run
 * killed before its teardown): their servers, links (and with them the
 * routes), namespaces and guard tables. Idempotent.
 */
function removeStale(): void {
  mkdirSync(OWNERS, { recursive: true })
  for (const id of readdirSync(OWNERS)) {
    const pid = Number(readFileSync(join(OWNERS, id), 'utf8'))
    if (!/^i[0-9a-f]{3}$/.test(id) || alive(pid)) continue
    const n = names(id)
    for (const ns of [n.ns, n.privateNs]) {
      let pids: string[] = []
      try {
        pids = sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean)
      } catch {
        // no such namespace
      }
      for (const p of pids) quiet('kill', ['-9', p])
      quiet('ip', ['netns', 'del', ns])
    }
    quiet('ip', ['link', 'del', n.inetIf])
    quiet('ip', ['link', 'del', n.prvIf])
    quiet('nft', ['delete', 'table', 'inet', n.guard])
    rmSync(join(OWNERS, id), { force: true })
  }
}

/**
 * Builds the fake internet. Order matters for safety: guard table, then the
 * namespaces and links, then the host routes, then the servers.
 */
export async function startInternet(): Promise<Internet> {
  removeStale()
  let id: string
  do id = `i${randomBytes(2).toString('hex').slice(0, 3)}`
  while (existsSync(join(OWNERS, id)) || existsSync(`/run/netns/${names(id).ns}`))
  const { ns, privateNs, inetIf, prvIf, guard } = names(id)
  const dir = mkdtempSync(`/tmp/warren-inet-${id}-`)
  writeFileSync(join(OWNERS, id), String(process.pid))
  const undo: Array<() => void | Promise<void>> = [
    () => rmSync(join(OWNERS, id), { force: true }),
    () => rmSync(dir, { recursive: true, force: true }),
  ]
  const teardown = async () => {
    const errors: unknown[] = []
    for (const step of undo.splice(0).reverse()) {
      try {
        await step()
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length) throw new AggregateError(errors, `[${id}] internet teardown failed`)
  }
  try {
    for (const range of FAKE_RANGES) {
      const existing = sh('ip', ['-4', 'route', 'show', range]).trim()
      if (existing) throw new Error(`a route to ${range} exists already (${existing}); refusing`)
    }
    const taken = hostNetworks()
    if (taken.some((n) => overlaps(n, PRIVATE_GUARD))) {
      throw new Error(`${PRIVATE_GUARD} is in use on this host; refusing`)
    }
    // 1. The guard: to the fake ranges, only our own links.
    const dsts = `{ ${[...FAKE_RANGES, PRIVATE_GUARD].join(', ')} }`
    const rule = `ip daddr ${dsts} oifname != { "${inetIf}", "${prvIf}" } drop`
    sh(
      'nft',
      ['-f', '-'],
      `table inet ${guard} {
  chain output { type filter hook output priority -300; policy accept; ${rule}; }
  chain forward { type filter hook forward priority -300; policy accept; ${rule}; }
  chain postrouting { type filter hook postrouting priority 300; policy accept; ${rule}; }
}
`,
    )
    undo.push(() => quiet('nft', ['delete', 'table', 'inet', guard]))

    // 2. Namespaces, links, addresses (no default route inside: nothing is forwarded on).
    const [inetHost, inetNs] = freeLink(taken)
    const [prvHost, prvNs] = freeLink(taken)
    const link = (name: string, ifname: string, host: string, peer: string, ips: string[]) => {
      sh('ip', ['netns', 'add', name])
      undo.push(() => quiet('ip', ['netns', 'del', name]))
      sh('ip', ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', `${id}-x`])
      undo.push(() => quiet('ip', ['link', 'del', ifname]))
      sh('ip', ['link', 'set', `${id}-x`, 'netns', name])
      sh('ip', ['addr', 'add', `${host}/30`, 'dev', ifname])
      sh('ip', ['link', 'set', ifname, 'up'])
      sh(
        'ip',
        ['-n', name, '-batch', '-'],
        [
          `link set ${id}-x name eth0`,
          `addr add ${peer}/30 dev eth0`,
          'link set eth0 up',
          'link set lo up',
          ...ips.map((ip) => `addr add ${ip}/32 dev lo`),
        ].join('\n'),
      )
    }
    const inetIps = [...new Set([...Object.values(HOSTS), DNS_IP])]
    link(ns, inetIf, inetHost, inetNs, inetIps)
    link(privateNs, prvIf, prvHost, prvNs, [PRIVATE_IP])

    // 3. Host routes, each to an address that now exists.
    for (const range of FAKE_RANGES) {
      sh('ip', ['route', 'add', range, 'via', inetNs, 'dev', inetIf, 'src', inetHost])
      undo.push(() => quiet('ip', ['route', 'del', range, 'via', inetNs, 'dev', inetIf]))
    }
    sh('ip', ['route', 'add', `${PRIVATE_IP}/32`, 'via', prvNs, 'dev', prvIf, 'src', prvHost])
    undo.push(() => quiet('ip', ['route', 'del', `${PRIVATE_IP}/32`, 'via', prvNs, 'dev', prvIf]))

    // 4. Servers.
    const records: Record<string, string> = { ...HOSTS, ...DNS_ONLY }
    const tls = makeCertificates(
      dir,
      [...Object.keys(HOSTS), '*.allowed.test', '*.wild.test', 'private.test'],
      [...Object.values(HOSTS), PRIVATE_IP],
    )
    const script = join(dir, 'hosts.mjs')
    writeFileSync(script, SERVER)
    const inetCfg = join(dir, 'inet.json')
    writeFileSync(
      inetCfg,
      JSON.stringify({
        names: HOSTS,
        key: tls.key,
        cert: tls.cert,
        dns: {
          ip: DNS_IP,
          module: createRequire(import.meta.url).resolve('dns-packet'),
          records,
        },
      }),
    )
    const prvCfg = join(dir, 'private.json')
    writeFileSync(
      prvCfg,
      JSON.stringify({ names: { 'private.test': PRIVATE_IP }, key: tls.key, cert: tls.cert }),
    )
    for (const [where, cfg] of [
      [ns, inetCfg],
      [privateNs, prvCfg],
    ] as const) {
      const servers = startServers(where, cfg, script)
      undo.push(() => stopChild(servers.child))
      await servers.ready
    }

    return {
      ns,
      privateNs,
      hostEnd: inetHost,
      caPem: tls.ca,
      records,
      dnsUpstream: DNS_IP,
      teardown,
    }
  } catch (err) {
    await teardown().catch((e) => console.error(e))
    throw err
  }
}

/**
 * One fake internet per test file. Call it before `useWarren` so it exists
 * before the node starts, and is torn down after it.
 */
export function useInternet(): () => Internet {
  let internet: Internet | undefined
  beforeAll(async () => {
    internet = await startInternet()
  }, 60_000)
  afterAll(async () => {
    await internet?.teardown()
  })
  return () => {
    if (!internet) throw new Error('internet not started')
    return internet
  }
}
