// Live network updates on running sandboxes, each checked by connectivity
// from inside: PUT /sandboxes/{id}/network and the SDK's updateNetwork replace
// the whole config (an entry not repeated no longer applies; clearing
// restores access); the config survives hot and cold pause/resume and an
// orchestrator restart; a failed apply keeps both the old rules and the
// record; concurrent updates leave node and record in agreement; 1000 rules
// apply; open connections that a tightening denies are cut at once (reset,
// not left to hang), those it still allows are not, and a loosening cuts
// nothing (also through the egress proxy).
import { Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, eventually, expectApiError } from '../helpers/api-client.js'
import { DNS_IP, HOSTS, useInternet } from '../helpers/internet.js'
import { connect, pause } from '../helpers/lifecycle.js'
import { useWarren } from '../helpers/warren-fixture.js'
import { prepare, reach, refusal } from './probe.js'

const internet = useInternet()
const warren = useWarren({ env: { WARREN_DNS_UPSTREAMS: DNS_IP } })
const UNKNOWN = 'zzzzzzzzzzzzzzzzzzz0'
let sbx: Sandbox

beforeAll(async () => {
  sbx = await Sandbox.create({
    ...warren().sdk,
    timeoutMs: 600_000,
    metadata: { suite: 'network-updates' },
  })
  await prepare(sbx, internet())
})

afterAll(async () => {
  await sbx?.kill().catch(() => {})
})

/** What every step probes: two bare addresses, three names, UDP. */
const PROBES = [
  'http://203.0.113.10/',
  'http://203.0.113.20/',
  'https://allowed.test/',
  'https://other.test/',
  'https://a.wild.test/',
  'udp:203.0.113.7:7',
] as const

const ALL_OK = [
  'ok:ip-a.test',
  'ok:ip-b.test',
  'ok:allowed.test',
  'ok:other.test',
  'ok:a.wild.test',
  'udp:echo',
]
const CONN = 'blocked:connect'
const DNS = 'blocked:dns'
const PROXY = 'http:403'
const UDP_NO = 'udp:Operation not permitted'

async function expectProbes(want: string[]) {
  const got = await reach(sbx, [...PROBES])
  expect(PROBES.map((p) => got[p])).toEqual(want.map(refusal))
}

async function put(body: Record<string, unknown>, id = sbx.sandboxId) {
  return api(warren(), 'PUT', `/sandboxes/${id}/network`, { json: body })
}

async function record(id = sbx.sandboxId) {
  const res = await api(warren(), 'GET', `/sandboxes/${id}`)
  expect(res.status, res.text).toBe(200)
  return res.body as { network: Record<string, unknown>; allowInternetAccess: boolean | null }
}

type Step = {
  /** PUT body (Warren's full shape), or the SDK's updateNetwork argument. */
  put?: Record<string, unknown>
  sdk?: Parameters<Sandbox['updateNetwork']>[0]
  want: string[]
}

/** 13 updates in a row on one sandbox; each replaces the last. */
const STEPS: Array<[string, Step]> = [
  [
    'deny a /24',
    { put: { denyOut: ['203.0.113.0/24'] }, want: [CONN, CONN, ...ALL_OK.slice(2, 5), UDP_NO] },
  ],
  [
    'allow one address of it back',
    {
      put: { denyOut: ['203.0.113.0/24'], allowOut: ['203.0.113.10'] },
      want: ['ok:ip-a.test', CONN, ...ALL_OK.slice(2, 5), UDP_NO],
    },
  ],
  [
    'allow others instead: .10 is no longer allowed',
    {
      put: { denyOut: ['203.0.113.0/24'], allowOut: ['203.0.113.20', '203.0.113.7'] },
      want: [CONN, 'ok:ip-b.test', ...ALL_OK.slice(2, 5), 'udp:echo'],
    },
  ],
  ['clear', { put: {}, want: ALL_OK }],
  [
    'only allowed.test (SDK)',
    {
      sdk: { allowOut: ['allowed.test'], denyOut: ['0.0.0.0/0'] },
      want: [PROXY, PROXY, 'ok:allowed.test', DNS, DNS, UDP_NO],
    },
  ],
  [
    'only other.test',
    {
      put: { allowOut: ['other.test'], denyOut: ['0.0.0.0/0'] },
      want: [PROXY, PROXY, DNS, 'ok:other.test', DNS, UDP_NO],
    },
  ],
  [
    'a wildcard and an address',
    {
      put: { allowOut: ['*.wild.test', '203.0.113.10'], denyOut: ['0.0.0.0/0'] },
      want: ['ok:ip-a.test', PROXY, DNS, DNS, 'ok:a.wild.test', UDP_NO],
    },
  ],
  [
    'no internet (SDK)',
    { sdk: { allowInternetAccess: false }, want: [CONN, CONN, DNS, DNS, DNS, UDP_NO] },
  ],
  [
    'no internet but one address (SDK)',
    {
      sdk: { allowInternetAccess: false, allowOut: ['203.0.113.7'] },
      want: [CONN, CONN, DNS, DNS, DNS, 'udp:echo'],
    },
  ],
  [
    'every name',
    {
      put: { allowOut: ['*'], denyOut: ['0.0.0.0/0'] },
      want: [PROXY, PROXY, 'ok:allowed.test', 'ok:other.test', 'ok:a.wild.test', UDP_NO],
    },
  ],
  [
    'deny the other /24 by address',
    {
      put: { denyOut: ['198.51.100.0/24'] },
      want: ['ok:ip-a.test', 'ok:ip-b.test', CONN, CONN, CONN, 'udp:echo'],
    },
  ],
  [
    'allow_internet_access false with a name and an address',
    {
      put: { allow_internet_access: false, allowOut: ['allowed.test', '203.0.113.20'] },
      want: [PROXY, 'ok:ip-b.test', 'ok:allowed.test', DNS, DNS, UDP_NO],
    },
  ],
  ['clear (SDK)', { sdk: {}, want: ALL_OK }],
]

describe('a sequence of live updates', () => {
  it('starts open', async () => {
    await expectProbes(ALL_OK)
  })

  it.each(STEPS)('%s', async (_, step) => {
    if (step.sdk) {
      await sbx.updateNetwork(step.sdk)
    } else {
      const res = await put(step.put ?? {})
      expect(res.status, res.text).toBe(204)
    }
    await expectProbes(step.want)
    // The record says what was sent: the whole config, nothing merged in.
    const body: Record<string, unknown> = step.sdk
      ? {
          ...step.sdk,
          ...(step.sdk.allowInternetAccess !== undefined
            ? { allow_internet_access: step.sdk.allowInternetAccess }
            : {}),
        }
      : (step.put ?? {})
    const { allow_internet_access: iae, allowInternetAccess: _sdkIae, ...network } = body
    expect(await record()).toMatchObject({ network, allowInternetAccess: iae ?? null })
    expect(Object.keys((await record()).network).sort()).toEqual(Object.keys(network).sort())
  })
})

describe('lifecycle', () => {
  /** Rules with a name, an address and a mask: the whole config must come back. */
  const RULES = {
    allowOut: ['allowed.test', '203.0.113.7'],
    denyOut: ['0.0.0.0/0'],
    maskRequestHost: 'masked.test:${PORT}',
  }
  const RULES_WANT = [PROXY, PROXY, 'ok:allowed.test', DNS, DNS, 'udp:echo']

  it('keeps the rules across a hot and a cold pause/resume; refuses updates while paused', async () => {
    expect((await put(RULES)).status).toBe(204)
    await expectProbes(RULES_WANT)
    for (const memory of [true, false]) {
      expect(await pause(warren(), sbx.sandboxId, memory)).toBe(204)
      expectApiError(await put({}), 409)
      expect(await record()).toMatchObject({ network: RULES })
      const resumed = await connect(warren(), sbx.sandboxId)
      expect(resumed.body.resumedFrom).toBe(memory ? 'memory' : 'files')
      await expectProbes(RULES_WANT)
      expect(await record()).toMatchObject({ network: RULES, allowInternetAccess: null })
    }
  })

  it('keeps the rules across an orchestrator restart, and updates still apply after it', async () => {
    await warren().stop()
    await warren().start()
    await expectProbes(RULES_WANT)
    expect(await record()).toMatchObject({ network: RULES })
    expect((await put({ denyOut: ['203.0.113.20'] })).status).toBe(204)
    await expectProbes([
      'ok:ip-a.test',
      CONN,
      'ok:allowed.test',
      'ok:other.test',
      'ok:a.wild.test',
      'udp:echo',
    ])
  })

  it('applies 1000 rules (the most a list takes) and refuses 1001', async () => {
    // 999 addresses no test ever contacts (10.0.0.0/8 is always denied), plus one it does.
    const many = Array.from({ length: 999 }, (_, i) => `10.99.${i >> 8}.${i & 255}`)
    expect(
      (await put({ allowOut: [...many, '203.0.113.10'], denyOut: ['203.0.113.0/24'] })).status,
    ).toBe(204)
    await expectProbes([
      'ok:ip-a.test',
      CONN,
      'ok:allowed.test',
      'ok:other.test',
      'ok:a.wild.test',
      UDP_NO,
    ])
    expectApiError(await put({ allowOut: [...many, '203.0.113.10', '203.0.113.20'] }), 400)
    expect((await record()).network.allowOut).toHaveLength(1000)
    expect((await put({})).status).toBe(204)
  })

  it('concurrent updates end with the node enforcing exactly what the record says', async () => {
    const bodies = Array.from({ length: 6 }, (_, i) => ({
      denyOut: [i % 2 ? '203.0.113.10' : '203.0.113.20'],
    }))
    const results = await Promise.all(bodies.map((b) => put(b)))
    expect(results.map((r) => r.status)).toEqual(bodies.map(() => 204))
    const { network } = await record()
    const denied = (network.denyOut as string[])[0]
    const got = await reach(sbx, ['http://203.0.113.10/', 'http://203.0.113.20/'])
    expect(got).toEqual({
      'http://203.0.113.10/': denied === '203.0.113.10' ? refusal(CONN) : 'ok:ip-a.test',
      'http://203.0.113.20/': denied === '203.0.113.20' ? refusal(CONN) : 'ok:ip-b.test',
    })
    expect((await put({})).status).toBe(204)
  })

  it('answers 404 for an unknown sandbox', async () => {
    expectApiError(await put({}, UNKNOWN), 404)
  })
})

/**
 * A TCP client that sends a byte every 100 ms to an echo server and logs
 * each answer (`<time> ok <n>`) until the connection fails (`<time> error ...`).
 */
const PING = `import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)
s.settimeout(1)
out = open(sys.argv[3], 'w', buffering=1)
n = 0
while True:
    try:
        s.sendall(b'x')
        if not s.recv(16):
            out.write('%.3f closed\\n' % time.time())
            break
        n += 1
        out.write('%.3f ok %d\\n' % (time.time(), n))
    except socket.timeout:
        out.write('%.3f timeout\\n' % time.time())
    except OSError as e:
        out.write('%.3f error %s\\n' % (time.time(), e.strerror))
        break
    time.sleep(0.1)
`

describe('open connections', () => {
  const lastLine = async (path: string) =>
    (await sbx.files.read(path)).trim().split('\n').at(-1) ?? ''
  const okCount = async (path: string) => Number(/ ok (\d+)$/.exec(await lastLine(path))?.[1] ?? 0)
  const size = async (path: string) =>
    // wc, not stat: gVisor refuses coreutils' statx flag (docs/architecture.md, "gVisor").
    Number((await sbx.commands.run(`wc -c < ${path}`)).stdout.trim())
  const slow = (scheme: string, name: string) => `/tmp/slow-${scheme}-${name}`
  /** The smaller of the HTTP and HTTPS slow downloads from `name` so far. */
  const sizes = async (name: string) =>
    Math.min(await size(`${slow('http', name)}.out`), await size(`${slow('https', name)}.out`))

  it('a tightening cuts the connections it denies at once and keeps the others', async () => {
    await sbx.files.write('/tmp/ping.py', PING)
    expect(
      (
        await put({
          allowOut: ['203.0.113.7', '203.0.113.10', 'allowed.test', 'other.test'],
          denyOut: ['0.0.0.0/0'],
        })
      ).status,
    ).toBe(204)
    // Two echo conversations by address, four slow downloads (HTTP and
    // HTTPS) through the egress proxy.
    for (const ip of ['203.0.113.7', '203.0.113.10']) {
      await sbx.commands.run(`python3 /tmp/ping.py ${ip} 7 /tmp/ping-${ip}.log`, {
        background: true,
      })
    }
    for (const name of ['allowed.test', 'other.test']) {
      for (const scheme of ['http', 'https']) {
        await sbx.commands.run(
          `curl -sS -N --cacert /tmp/ca.pem -o ${slow(scheme, name)}.out ${scheme}://${name}/slow 2>/dev/null; echo "$? $(date +%s.%N)" > ${slow(scheme, name)}.exit`,
          { background: true },
        )
      }
    }
    await eventually(
      'all six connections carry data',
      async () =>
        // The logs appear once the background jobs run: until then, nothing counted.
        (await okCount('/tmp/ping-203.0.113.7.log').catch(() => 0)) >= 3 &&
        (await okCount('/tmp/ping-203.0.113.10.log').catch(() => 0)) >= 3 &&
        (await sizes('allowed.test').catch(() => 0)) >= 3 &&
        (await sizes('other.test').catch(() => 0)) >= 3,
      10_000,
      100,
    )

    // An update that changes nothing for them cuts nothing.
    const unrelated = await put({
      allowOut: ['203.0.113.7', '203.0.113.10', 'allowed.test', 'other.test', '203.0.113.66'],
      denyOut: ['0.0.0.0/0'],
    })
    expect(unrelated.status).toBe(204)
    const before = {
      ping7: await okCount('/tmp/ping-203.0.113.7.log'),
      slow: await sizes('allowed.test'),
    }
    await eventually(
      'connections still allowed keep flowing after an unrelated update',
      async () =>
        (await okCount('/tmp/ping-203.0.113.7.log')) >= before.ping7 + 5 &&
        (await sizes('allowed.test')) >= before.slow + 5,
      5000,
      100,
    )

    // Deny 203.0.113.7 (by address) and allowed.test (by name).
    const sent = Date.now() / 1000
    const tight = await put({
      allowOut: ['203.0.113.10', 'other.test'],
      denyOut: ['0.0.0.0/0'],
    })
    expect(tight.status).toBe(204)
    await eventually(
      'the echo conversation to 203.0.113.7 fails',
      async () => / error /.test(await lastLine('/tmp/ping-203.0.113.7.log')),
      5000,
      50,
    )
    const [brokeAt, , ...why] = (await lastLine('/tmp/ping-203.0.113.7.log')).split(' ')
    // Reset, not left to time out: within a second or two of the PUT.
    expect(why.join(' ')).toBe('Connection reset by peer')
    expect(Number(brokeAt) - sent).toBeLessThan(2)
    for (const scheme of ['http', 'https']) {
      const exit = `${slow(scheme, 'allowed.test')}.exit`
      await eventually(
        `the ${scheme} download from allowed.test ends`,
        async () => (await sbx.commands.run(`cat ${exit} 2>/dev/null || true`)).stdout !== '',
        5000,
        50,
      )
      const [code, endedAt] = (await sbx.files.read(exit)).trim().split(' ')
      expect(code, scheme).not.toBe('0')
      expect(Number(endedAt) - sent).toBeLessThan(2)
    }

    // The connections still allowed carry on.
    const still = {
      ping10: await okCount('/tmp/ping-203.0.113.10.log'),
      slow: await sizes('other.test'),
    }
    await eventually(
      'the allowed connections keep flowing',
      async () =>
        (await okCount('/tmp/ping-203.0.113.10.log')) >= still.ping10 + 5 &&
        (await sizes('other.test')) >= still.slow + 5,
      5000,
      100,
    )
    expect(await lastLine('/tmp/ping-203.0.113.10.log')).toMatch(/ ok \d+$/)
    for (const scheme of ['http', 'https'])
      expect(
        await sbx.commands.run(`cat ${slow(scheme, 'other.test')}.exit 2>/dev/null || true`),
      ).toMatchObject({ stdout: '' })
    // And a new connection to what was cut is refused.
    expect(await reach(sbx, ['tcp:203.0.113.7:7', 'https://allowed.test/'])).toEqual({
      'tcp:203.0.113.7:7': refusal('tcp:No route to host'),
      'https://allowed.test/': DNS,
    })
  })

  it('a loosening cuts nothing, and an address denied later cuts what the proxy carries to it', async () => {
    expect(
      (await put({ allowOut: ['allowed.test', 'other.test'], denyOut: ['0.0.0.0/0'] })).status,
    ).toBe(204)
    for (const name of ['allowed.test', 'other.test']) {
      await sbx.commands.run(
        `curl -sS -N -o /tmp/loose-${name}.out http://${name}/slow 2>/dev/null; echo "$? $(date +%s.%N)" > /tmp/loose-${name}.exit`,
        { background: true },
      )
    }
    const flowing = async (name: string, more = 3) => {
      const start = await size(`/tmp/loose-${name}.out`).catch(() => 0)
      await eventually(
        `the download from ${name} flows`,
        async () => (await size(`/tmp/loose-${name}.out`).catch(() => 0)) >= start + more,
        5000,
        100,
      )
    }
    const ended = async (name: string) =>
      (await sbx.commands.run(`cat /tmp/loose-${name}.exit 2>/dev/null || true`)).stdout !== ''
    await flowing('allowed.test')
    await flowing('other.test')
    // Everything allowed now: the proxied downloads have no reason to end.
    expect((await put({})).status).toBe(204)
    await flowing('allowed.test', 5)
    await flowing('other.test', 5)
    // Address rules only: other.test's address is denied, allowed.test's is not.
    expect((await put({ denyOut: [HOSTS['other.test']] })).status).toBe(204)
    await eventually('the download from other.test ends', () => ended('other.test'), 5000, 50)
    await flowing('allowed.test', 5)
    expect(await ended('allowed.test')).toBe(false)
    expect((await put({ denyOut: [HOSTS['allowed.test']] })).status).toBe(204)
    await eventually('the download from allowed.test ends', () => ended('allowed.test'), 5000, 50)
    expect((await put({})).status).toBe(204)
  })
})
