// Egress rules, checked from inside real sandboxes against a fake internet of
// our own (tests/helpers/internet.ts): CIDR allow and deny (allow wins), domain
// rules judged by Warren's egress proxy from the HTTP Host or TLS SNI (exact,
// `*.suffix`, `*`, any case), the proxy dialling the name itself (so
// /etc/hosts inside the sandbox cannot redirect it), private ranges and the
// host that no rule opens, DNS limited to allowed names under deny-all, UDP,
// allow_internet_access: false; and validation of bad entries at create and
// update. Every blocked destination exists: a namespace of the test serves it.
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Sandbox, type SandboxOpts } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, expectApiError } from '../helpers/api-client.js'
import {
  DNS_IP,
  HOSTS,
  type HostName,
  PATTERN_CHUNK,
  PRIVATE_IP,
  patternChunk,
  useInternet,
} from '../helpers/internet.js'
import { useWarren } from '../helpers/warren-fixture.js'
import { shResult } from '../runtime/helpers.js'
import { matrix, prepare, reach } from './probe.js'

const internet = useInternet()
const warren = useWarren({ env: { WARREN_DNS_UPSTREAMS: DNS_IP } })
const made: Sandbox[] = []

afterAll(async () => {
  await Promise.all(made.map((s) => s.kill().catch(() => {})))
})

async function sandbox(opts: Pick<SandboxOpts, 'network' | 'allowInternetAccess'> = {}) {
  const sbx = await Sandbox.create({
    ...warren().sdk,
    ...opts,
    timeoutMs: 300_000,
    metadata: { suite: 'network-egress' },
  })
  made.push(sbx)
  await prepare(sbx, internet())
  return sbx
}

async function expectReach(sbx: Sandbox, rows: Array<[string, string]>) {
  const { specs, want } = matrix(rows)
  expect(await reach(sbx, specs)).toEqual(want)
}

/** Maps names to addresses in the sandbox's /etc/hosts (sandbox root may). */
async function etcHosts(sbx: Sandbox, entries: Record<string, string>) {
  const lines = Object.entries(entries)
    .map(([name, ip]) => `${ip} ${name}`)
    .join('\\n')
  const r = await shResult(sbx, `printf '127.0.0.1 localhost\\n${lines}\\n' > /etc/hosts`, 'root')
  expect(r.exitCode, r.stderr).toBe(0)
}

describe('without rules', () => {
  it('reaches every fake host over TCP and UDP, and DNS answers every name', async () => {
    const sbx = await sandbox()
    await expectReach(sbx, [
      ['http://allowed.test/', 'ok:allowed.test'],
      ['https://other.test/', 'ok:other.test'],
      ['http://203.0.113.10/', 'ok:ip-a.test'],
      // The certificate names the addresses too: HTTPS by IP works when nothing forbids it.
      ['https://198.51.100.20/', 'ok:other.test'],
      ['http://denied.test/', 'ok:denied.test'],
      ['udp:203.0.113.7:7', 'udp:echo'],
      ['tcp:203.0.113.7:7', 'tcp:echo'],
      ['dns:private.test', `dns:${PRIVATE_IP}`],
      ['dns:no-such-name.test', 'dns:fail'],
      // Private ranges are never reachable, rules or not.
      [`http://${PRIVATE_IP}/`, 'blocked:connect'],
    ])
  })
})

describe('address rules', () => {
  it('deny CIDRs and IPs, allow wins over deny, for TCP and UDP; DNS stays open', async () => {
    const sbx = await sandbox({
      network: {
        denyOut: ['203.0.113.0/24', `${HOSTS['other.test']}/32`],
        allowOut: ['203.0.113.0/29', HOSTS['ip-a.test']],
      },
    })
    await expectReach(sbx, [
      ['http://203.0.113.10/', 'ok:ip-a.test'], // allowed by address
      ['tcp:203.0.113.7:7', 'tcp:echo'], // allowed by the /29
      ['udp:203.0.113.7:7', 'udp:echo'],
      ['http://203.0.113.20/', 'blocked:connect'], // denied by the /24
      ['https://ip-b.test/', 'blocked:connect'],
      ['tcp:203.0.113.20:7', 'tcp:No route to host'],
      ['udp:203.0.113.20:7', 'udp:Operation not permitted'],
      ['https://other.test/', 'blocked:connect'], // denied by the /32
      ['https://allowed.test/', 'ok:allowed.test'], // named by no rule
      // No domain rules, no deny-all: every name resolves.
      ['dns:ip-b.test', `dns:${HOSTS['ip-b.test']}`],
      ['dns:other.test', `dns:${HOSTS['other.test']}`],
    ])
  })
})

describe('domain rules', () => {
  let sbx: Sandbox

  beforeAll(async () => {
    sbx = await sandbox({
      network: { allowOut: ['allowed.test', '*.WILD.test'], denyOut: ['0.0.0.0/0'] },
    })
  })

  it('resolve only allowed names', async () => {
    expect((await shResult(sbx, 'getent hosts allowed.test')).stdout).toMatch(
      /^198\.51\.100\.10\s+allowed\.test/,
    )
    const refused = await shResult(sbx, 'getent hosts other.test')
    expect(refused.exitCode).not.toBe(0)
    expect(refused.stdout).toBe('')
    await expectReach(sbx, [
      ['dns:allowed.test', `dns:${HOSTS['allowed.test']}`],
      ['dns:ALLOWED.Test', `dns:${HOSTS['allowed.test']}`],
      ['dns:a.wild.test', `dns:${HOSTS['a.wild.test']}`],
      ['dns:b.a.wild.test', `dns:${HOSTS['b.a.wild.test']}`],
      ['dns:wild.test', 'dns:fail'], // *.wild.test does not match its apex
      ['dns:api.allowed.test', 'dns:fail'], // allowed.test does not match subdomains
      ['dns:other.test', 'dns:fail'],
      ['dns:private.test', 'dns:fail'],
      // A refusal says so: REFUSED, not an empty NOERROR.
      ['rcode:other.test', 'rcode:REFUSED'],
      ['rcode:allowed.test', 'rcode:NOERROR'],
    ])
  })

  it('match exact names and subdomains of *.suffix, in any case, over HTTP and HTTPS', async () => {
    await expectReach(sbx, [
      ['http://allowed.test/', 'ok:allowed.test'],
      ['https://allowed.test/', 'ok:allowed.test'],
      ['https://ALLOWED.TEST/', 'ok:allowed.test'],
      ['http://Allowed.Test/', 'ok:allowed.test'],
      ['https://a.wild.test/', 'ok:a.wild.test'],
      ['http://b.a.wild.test/', 'ok:b.a.wild.test'],
      // Allowed names on other ports: only 80 and 443 go through the proxy.
      ['tcp:198.51.100.10:7', 'tcp:No route to host'],
    ])
  })

  it('are judged by the proxy from Host and SNI, not by what DNS would say', async () => {
    // /etc/hosts gives the refused names their real addresses: DNS is out of
    // the way, and the egress proxy alone refuses them.
    await etcHosts(sbx, {
      'api.allowed.test': HOSTS['api.allowed.test'],
      'wild.test': HOSTS['wild.test'],
      'other.test': HOSTS['other.test'],
    })
    await expectReach(sbx, [
      ['http://api.allowed.test/', 'http:403'],
      ['https://api.allowed.test/', 'blocked:tls'],
      ['http://wild.test/', 'http:403'],
      ['https://wild.test/', 'blocked:tls'],
      ['http://other.test/', 'http:403'],
      ['https://other.test/', 'blocked:tls'],
      // By address: HTTPS without SNI names nothing; HTTP's Host is the bare address.
      ['https://198.51.100.10/', 'blocked:tls'],
      ['http://198.51.100.10/', 'http:403'],
      ['https://203.0.113.10/', 'blocked:tls'],
      ['udp:203.0.113.7:7', 'udp:Operation not permitted'],
    ])
  })

  it('the proxy dials the name: /etc/hosts cannot send an allowed name elsewhere', async () => {
    // allowed.test now "is" ip-b.test's address, and other.test "is" allowed.test's.
    await etcHosts(sbx, {
      'allowed.test': HOSTS['ip-b.test'],
      'other.test': HOSTS['allowed.test'],
    })
    expect((await shResult(sbx, 'getent hosts allowed.test')).stdout).toMatch(/^203\.0\.113\.20\s/)
    await expectReach(sbx, [
      // The request still reaches the real allowed.test, not ip-b.test.
      ['http://allowed.test/', 'ok:allowed.test'],
      ['https://allowed.test/', 'ok:allowed.test'],
      // An address that serves an allowed name does not make another name allowed.
      ['http://other.test/', 'http:403'],
      ['https://other.test/', 'blocked:tls'],
    ])
  })

  it('judge every request on a kept-alive HTTP connection, not only the first', async () => {
    // One TCP connection to allowed.test's address: the first request names
    // allowed.test, the next one other.test (denied), then an absolute-form
    // target that would route by another name than the Host.
    const script = `import http.client
c = http.client.HTTPConnection('allowed.test', 80, timeout=5)
def ask(target, host):
    c.putrequest('GET', target, skip_host=True)
    c.putheader('Host', host)
    c.endheaders()
    r = c.getresponse()
    r.read()
    return r.status
print(ask('/', 'allowed.test'))
print(ask('/', 'other.test'))
print(ask('http://other.test/', 'allowed.test'))
`
    await sbx.files.write('/tmp/keepalive.py', script)
    const r = await shResult(sbx, 'python3 /tmp/keepalive.py')
    expect(r.stderr).toBe('')
    expect(r.stdout.split('\n')).toEqual(['200', '403', '400', ''])
  })

  it('carry large downloads byte for byte over HTTP and HTTPS, and still refuse other names', async () => {
    // Through the proxy (allowed.test is allowed by name only), in pieces
    // that the relay's buffer is read into again and again.
    const size = 48 * PATTERN_CHUNK + 12_345
    const want = createHash('sha256')
    for (let i = 0; i * PATTERN_CHUNK < size; i++) {
      want.update(patternChunk(i).subarray(0, Math.min(PATTERN_CHUNK, size - i * PATTERN_CHUNK)))
    }
    const digest = want.digest('hex')
    const curl = (scheme: string, name: HostName, path: string) =>
      `curl -sS --cacert /tmp/ca.pem --resolve ${name}:${scheme === 'http' ? 80 : 443}:${HOSTS[name]} ${scheme}://${name}${path}`
    for (const scheme of ['http', 'https']) {
      const r = await shResult(
        sbx,
        `${curl(scheme, 'allowed.test', `/pattern/${size}`)} | sha256sum`,
      )
      expect(r.stderr).toBe('')
      expect(r.stdout.split(' ')[0], scheme).toBe(digest)
    }
    // A name the rules do not allow is still refused, by Host and by SNI.
    const http = await shResult(
      sbx,
      `${curl('http', 'other.test', '/')} -o /dev/null -w '%{http_code}'`,
    )
    expect(http.stdout).toBe('403')
    const tls = await shResult(sbx, curl('https', 'other.test', '/'))
    expect(tls.exitCode).not.toBe(0)
    expect(tls.stdout).toBe('')
  })

  it("'*' allows every name and no bare address; explicit denies still apply to names", async () => {
    const any = await sandbox({ network: { allowOut: ['*'], denyOut: ['0.0.0.0/0'] } })
    await expectReach(any, [
      ['https://other.test/', 'ok:other.test'],
      ['http://wild.test/', 'ok:wild.test'],
      ['https://denied.test/', 'ok:denied.test'],
      ['dns:other.test', `dns:${HOSTS['other.test']}`],
      ['https://203.0.113.20/', 'blocked:tls'],
      ['http://203.0.113.20/', 'http:403'],
      ['tcp:203.0.113.7:7', 'tcp:No route to host'],
      ['udp:203.0.113.7:7', 'udp:Operation not permitted'],
      // Names resolving into private ranges: the connection to the private
      // address is refused before any proxy...
      ['http://private.test/', 'blocked:connect'],
      ['https://rebind.test/', 'blocked:connect'],
    ])
    // ...and when the sandbox believes they are public (a rebinding resolver,
    // here /etc/hosts), the proxy resolves them itself and refuses.
    await etcHosts(any, {
      'private.test': HOSTS['other.test'],
      'rebind.test': HOSTS['other.test'],
      'loopback.test': HOSTS['other.test'],
    })
    await expectReach(any, [
      ['http://private.test/', 'http:403'],
      ['https://private.test/', 'blocked:tls'],
      ['https://rebind.test/', 'blocked:tls'],
      ['http://loopback.test/', 'http:403'],
      ['https://other.test/', 'ok:other.test'],
    ])
  })
})

describe('always denied', () => {
  let hostServer: Server
  const hits: string[] = []

  beforeAll(async () => {
    // A server on every host address: what the sandbox fails to reach exists.
    hostServer = createServer((req, res) => {
      hits.push(req.socket.remoteAddress ?? '?')
      res.end('host')
    })
    await new Promise<void>((r) => hostServer.listen(0, '0.0.0.0', r))
  })
  afterAll(async () => {
    await new Promise<void>((r) => hostServer?.close(() => r()))
  })

  it('private ranges, the host and names resolving there stay blocked whatever allowOut says', async () => {
    const port = (hostServer.address() as AddressInfo).port
    const hostEnd = internet().hostEnd
    // Positive controls from the host: both targets answer.
    expect(await (await fetch(`http://${hostEnd}:${port}/`)).text()).toBe('host')
    expect(((await (await fetch(`http://${PRIVATE_IP}/`)).json()) as { name: string }).name).toBe(
      'private.test',
    )
    hits.length = 0
    const sbx = await sandbox({
      network: {
        allowOut: [
          PRIVATE_IP,
          '172.16.0.0/12',
          '10.0.0.0/8',
          hostEnd,
          'private.test',
          'rebind.test',
          'loopback.test',
          'denied.test',
        ],
        // denied.test resolves to an address denied by name here.
        denyOut: ['0.0.0.0/0', HOSTS['denied.test']],
      },
    })
    const gateway = (await shResult(sbx, "ip route show default | awk '{print $3}'")).stdout.trim()
    expect(gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
    await expectReach(sbx, [
      [`http://${PRIVATE_IP}/`, 'blocked:connect'],
      [`https://${PRIVATE_IP}/`, 'blocked:connect'],
      [`tcp:${PRIVATE_IP}:7`, 'tcp:No route to host'],
      [`udp:${PRIVATE_IP}:7`, 'udp:Operation not permitted'],
      [`http://${hostEnd}:${port}/`, 'blocked:connect'],
      [`http://${gateway}:${port}/`, 'blocked:connect'],
      ['http://private.test/', 'blocked:connect'],
      ['https://rebind.test/', 'blocked:connect'],
      // denied.test resolves to a public address, which the proxy will not dial.
      ['http://denied.test/', 'http:403'],
      ['https://denied.test/', 'blocked:tls'],
    ])
    // Names the sandbox believes public, resolving privately for the proxy.
    await etcHosts(sbx, {
      'private.test': HOSTS['other.test'],
      'rebind.test': HOSTS['other.test'],
      'loopback.test': HOSTS['other.test'],
    })
    await expectReach(sbx, [
      ['http://private.test/', 'http:403'],
      ['https://private.test/', 'blocked:tls'],
      ['http://rebind.test/', 'http:403'],
      ['https://loopback.test/', 'blocked:tls'],
    ])
    expect(hits).toEqual([])
  })
})

describe('allow_internet_access: false', () => {
  it('blocks everything, names included', async () => {
    const sbx = await sandbox({ allowInternetAccess: false })
    await expectReach(sbx, [
      ['http://allowed.test/', 'blocked:dns'],
      ['dns:allowed.test', 'dns:fail'],
      ['http://203.0.113.10/', 'blocked:connect'],
      ['https://198.51.100.10/', 'blocked:connect'],
      ['udp:203.0.113.7:7', 'udp:Operation not permitted'],
    ])
    const d = await api(warren(), 'GET', `/sandboxes/${sbx.sandboxId}`)
    expect(d.body).toMatchObject({ allowInternetAccess: false, network: {} })
  })

  it('still lets allowOut entries through, addresses and names', async () => {
    const sbx = await sandbox({
      allowInternetAccess: false,
      network: { allowOut: ['203.0.113.10', 'allowed.test'] },
    })
    await expectReach(sbx, [
      ['http://203.0.113.10/', 'ok:ip-a.test'],
      ['udp:203.0.113.10:7', 'udp:echo'],
      ['https://allowed.test/', 'ok:allowed.test'],
      ['dns:other.test', 'dns:fail'],
      ['https://203.0.113.20/', 'blocked:tls'],
      ['tcp:203.0.113.20:7', 'tcp:No route to host'],
      ['udp:203.0.113.20:7', 'udp:Operation not permitted'],
    ])
  })
})

describe('validation', () => {
  /** Bad network configs and the entry each error message must name. */
  const BAD: Array<[string, Record<string, unknown>, string]> = [
    ['a domain in denyOut', { denyOut: ['0.0.0.0/0', 'other.test'] }, "'other.test'"],
    ['a domain without deny-all', { allowOut: ['allowed.test'] }, "'allowed.test'"],
    ['a CIDR with a bad prefix', { allowOut: ['203.0.113.0/33'] }, "'203.0.113.0/33'"],
    ['a bad address', { denyOut: ['203.0.113.300'] }, "'203.0.113.300'"],
    ['an IPv6 address', { denyOut: ['2001:db8::1'] }, "'2001:db8::1'"],
    ['a bad domain', { allowOut: ['bad..test'], denyOut: ['0.0.0.0/0'] }, "'bad..test'"],
    ['a reversed port range', { denyIn: ['0.0.0.0/0:9000-8000'] }, "'0.0.0.0/0:9000-8000'"],
    ['port 0', { denyIn: ['203.0.113.0/24:0'] }, "'203.0.113.0/24:0'"],
    ['a port past 65535', { denyIn: ['0.0.0.0/0:1-65536'] }, "'0.0.0.0/0:1-65536'"],
    ['a bad ingress CIDR', { denyIn: ['127.0.0.300:80'] }, "'127.0.0.300:80'"],
    ['an ingress entry with junk', { denyIn: ['0.0.0.0/0:80:90'] }, "'0.0.0.0/0:80:90'"],
    ['allowIn without a catch-all deny', { allowIn: ['127.0.0.2/32'] }, 'allowIn'],
    ['a bad maskRequestHost', { maskRequestHost: 'bad host!' }, "'bad host!'"],
    ['a maskRequestHost with a path', { maskRequestHost: 'a.test/x' }, "'a.test/x'"],
  ]

  it('create rejects each bad entry with 400 naming it', async () => {
    for (const [what, network, named] of BAD) {
      const res = await api(warren(), 'POST', '/v2/sandboxes', {
        json: { templateID: 'base', network },
      })
      expectApiError(res, 400)
      expect((res.body as { message: string }).message, what).toContain(named)
    }
  })

  it('update rejects each bad entry with 400 naming it, and keeps the old rules', async () => {
    const sbx = await sandbox({ network: { denyOut: ['203.0.113.20'] } })
    const before = (await api(warren(), 'GET', `/sandboxes/${sbx.sandboxId}`)).body
    for (const [what, network, named] of BAD) {
      const res = await api(warren(), 'PUT', `/sandboxes/${sbx.sandboxId}/network`, {
        json: network,
      })
      expectApiError(res, 400)
      expect((res.body as { message: string }).message, what).toContain(named)
    }
    const after = (await api(warren(), 'GET', `/sandboxes/${sbx.sandboxId}`)).body
    expect(after).toMatchObject({ network: (before as { network: unknown }).network })
    await expectReach(sbx, [
      ['http://203.0.113.10/', 'ok:ip-a.test'],
      ['http://203.0.113.20/', 'blocked:connect'],
    ])
    // An unknown field is refused too, never dropped.
    expectApiError(
      await api(warren(), 'PUT', `/sandboxes/${sbx.sandboxId}/network`, {
        json: { allowOut: [], rules: {} },
      }),
      400,
    )
  })
})
