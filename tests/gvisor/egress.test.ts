// Egress rules of gVisor sandboxes, probed from inside against the fake
// internet of tests/helpers/internet.ts, as tests/network/egress.test.ts
// does for runc. gVisor's network stack sends frames below the namespace's
// IP hooks, so its rules are enforced on the host side of its veth: these
// probes prove they hold there (CIDR allow and deny, allow winning, domain
// rules through the egress proxy, DNS limited to allowed names, the host and
// private ranges never reachable, live updates). A refused packet shows up
// in gVisor as a refusal, an unreachable host or a timeout depending on the
// protocol, so outcomes are compared as reached (the exact answer) or not.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api } from '../helpers/api-client.js'
import { DNS_IP, HOSTS, PRIVATE_IP, useInternet } from '../helpers/internet.js'
import { handle } from '../helpers/lifecycle.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'
import { matrix, prepare, reach } from '../network/probe.js'
import { shResult } from '../runtime/helpers.js'

const internet = useInternet()
const warren = useWarren({ env: { WARREN_DNS_UPSTREAMS: DNS_IP } })
const sandboxes = useSandboxes(warren)

async function sandbox(body: Record<string, unknown> = {}): Promise<Sandbox> {
  const created = await sandboxes.createRaw({
    timeout: 300,
    isolation: 'gvisor',
    metadata: { suite: 'gvisor-egress' },
    ...body,
  })
  const sbx = handle(warren(), created)
  await prepare(sbx, internet())
  return sbx
}

/** A reached outcome as it is; every way of not getting through as `blocked`. */
function verdict(outcome: string): string {
  if (/^(ok:|tcp:echo$|udp:echo$|dns:\d|rcode:)/.test(outcome)) return outcome
  if (outcome === 'http:403') return outcome // the egress proxy's refusal
  return 'blocked'
}

async function expectReach(sbx: Sandbox, rows: Array<[string, string]>) {
  const { specs, want } = matrix(rows)
  const got = await reach(sbx, specs)
  expect(Object.fromEntries(Object.entries(got).map(([k, v]) => [k, verdict(v)]))).toEqual(want)
}

describe('gVisor egress', () => {
  it('runs in gVisor, and without rules reaches the fake internet but never a private range', async () => {
    const sbx = await sandbox()
    expect((await shResult(sbx, 'dmesg | head -1')).stdout).toMatch(/gVisor/)
    await expectReach(sbx, [
      ['http://allowed.test/', 'ok:allowed.test'],
      ['https://other.test/', 'ok:other.test'],
      ['http://203.0.113.10/', 'ok:ip-a.test'],
      ['udp:203.0.113.7:7', 'udp:echo'],
      ['tcp:203.0.113.7:7', 'tcp:echo'],
      ['dns:private.test', `dns:${PRIVATE_IP}`],
      [`http://${PRIVATE_IP}/`, 'blocked'],
      [`udp:${PRIVATE_IP}:7`, 'blocked'],
    ])
  })

  it('address rules: deny CIDRs and IPs, allow wins over deny, TCP and UDP', async () => {
    const sbx = await sandbox({
      network: {
        denyOut: ['203.0.113.0/24', `${HOSTS['other.test']}/32`],
        allowOut: ['203.0.113.0/29', HOSTS['ip-a.test']],
      },
    })
    await expectReach(sbx, [
      ['http://203.0.113.10/', 'ok:ip-a.test'],
      ['tcp:203.0.113.7:7', 'tcp:echo'],
      ['udp:203.0.113.7:7', 'udp:echo'],
      ['http://203.0.113.20/', 'blocked'],
      ['tcp:203.0.113.20:7', 'blocked'],
      ['udp:203.0.113.20:7', 'blocked'],
      ['https://other.test/', 'blocked'],
      ['https://allowed.test/', 'ok:allowed.test'],
      ['dns:ip-b.test', `dns:${HOSTS['ip-b.test']}`],
    ])
  })

  it('domain rules: only allowed names resolve and pass the egress proxy', async () => {
    const sbx = await sandbox({
      network: { allowOut: ['allowed.test', '*.wild.test'], denyOut: ['0.0.0.0/0'] },
    })
    await expectReach(sbx, [
      ['dns:allowed.test', `dns:${HOSTS['allowed.test']}`],
      ['dns:a.wild.test', `dns:${HOSTS['a.wild.test']}`],
      ['dns:other.test', 'blocked'],
      ['rcode:other.test', 'rcode:REFUSED'],
      ['http://allowed.test/', 'ok:allowed.test'],
      ['https://allowed.test/', 'ok:allowed.test'],
      ['https://a.wild.test/', 'ok:a.wild.test'],
      // Raw addresses no rule allows: port 80 goes to the egress proxy, which refuses it.
      ['http://203.0.113.10/', 'http:403'],
      ['https://198.51.100.20/', 'blocked'],
      ['udp:203.0.113.7:7', 'blocked'],
      ['tcp:203.0.113.7:7', 'blocked'],
    ])
    // A name the sandbox maps itself to another address is judged by name:
    // the proxy dials other.test's own address, which no rule allows.
    const r = await shResult(
      sbx,
      `curl -sS -o /dev/null -w '%{http_code}' --resolve other.test:80:${HOSTS['allowed.test']} http://other.test/`,
    )
    expect(r.stdout).toBe('403')
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

    it('the host, the gateway and private ranges stay blocked whatever allowOut says', async () => {
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
          allowOut: [PRIVATE_IP, '172.16.0.0/12', '10.0.0.0/8', hostEnd, 'private.test'],
          denyOut: ['0.0.0.0/0'],
        },
      })
      const gateway = (
        await shResult(sbx, "ip route show default | awk '{print $3}'")
      ).stdout.trim()
      expect(gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
      await expectReach(sbx, [
        [`http://${PRIVATE_IP}/`, 'blocked'],
        [`tcp:${PRIVATE_IP}:7`, 'blocked'],
        [`udp:${PRIVATE_IP}:7`, 'blocked'],
        [`http://${hostEnd}:${port}/`, 'blocked'],
        [`http://${gateway}:${port}/`, 'blocked'],
        [`tcp:127.0.0.1:${port}`, 'blocked'],
        ['http://private.test/', 'blocked'],
        // Warren's DNS on the gateway still answers (allowed names only).
        ['dns:private.test', `dns:${PRIVATE_IP}`],
      ])
      expect(hits).toEqual([])
    })
  })

  it('a live update tightens and loosens the rules of a running gVisor sandbox', async () => {
    const sbx = await sandbox()
    await expectReach(sbx, [['tcp:203.0.113.7:7', 'tcp:echo']])
    const put = (network: Record<string, unknown>) =>
      api(warren(), 'PUT', `/sandboxes/${sbx.sandboxId}/network`, { json: network })
    expect((await put({ denyOut: ['203.0.113.0/24'] })).status).toBe(204)
    await expectReach(sbx, [
      ['tcp:203.0.113.7:7', 'blocked'],
      ['udp:203.0.113.7:7', 'blocked'],
      ['http://allowed.test/', 'ok:allowed.test'],
    ])
    expect((await put({})).status).toBe(204)
    await expectReach(sbx, [['tcp:203.0.113.7:7', 'tcp:echo']])
  })
})
