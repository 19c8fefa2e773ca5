// Warm sandboxes (WARREN_WARM_POOL): a create of the base template with its
// defaults claims a sandbox the node started ahead, through the real SDK.
// What is claimed must be the user's alone — its id as hostname, its env
// vars, its access token, its network rules — and never handed out twice,
// also under concurrent creates. The pool refills; a create the pool cannot
// serve boots as without one; a claimed sandbox pauses, resumes, survives a
// node restart and is killed like any other; warm sandboxes never show in
// lists and go with the node. Traffic only to loopback, the sandboxes' own
// namespaces and the fake internet's.

import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Sandbox } from 'e2b'
import { describe, expect, it } from 'vitest'
import { api, detail, eventually } from '../helpers/api-client.js'
import { DNS_IP, useInternet } from '../helpers/internet.js'
import { connect, pause } from '../helpers/lifecycle.js'
import { sandboxCgroup } from '../helpers/node-fixture.js'
import { fixtureSecret, nodeSandboxIds } from '../helpers/orchestrator-client.js'
import { proxyRequest } from '../helpers/proxy-client.js'
import { runcContainers } from '../helpers/runc-list.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { underGvisor } from '../helpers/test-isolation.js'
import { useWarren, type WarrenFixture } from '../helpers/warren-fixture.js'
import { prepare, reach } from '../network/probe.js'

const POOL = 2
const internet = useInternet()
const warren = useWarren({
  env: { WARREN_WARM_POOL: `base=${POOL}`, WARREN_DNS_UPSTREAMS: DNS_IP },
})
const sandboxes = useSandboxes(warren)

/** The warm name a claimed sandbox's container goes by, from the node's record; undefined if booted cold. */
function warmName(w: WarrenFixture, id: string): string | undefined {
  const record = JSON.parse(
    readFileSync(join(w.dataDir, 'sandboxes', id, 'sandbox.json'), 'utf8'),
  ) as { hostName?: string }
  return record.hostName
}

/** Warm sandboxes ready on the node, as it reports them in its metrics. */
async function readyWarm(w: WarrenFixture): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${w.ports.rpc}/metrics`, {
    headers: { 'x-warren-cluster-secret': fixtureSecret(w) },
  })
  expect(res.status).toBe(200)
  const m = /^warren_node_warm_sandboxes\{template_id="base"\} (\d+)$/m.exec(await res.text())
  return m ? Number(m[1]) : 0
}

const full = (w: WarrenFixture) =>
  eventually('the pool is full', async () => (await readyWarm(w)) === POOL, 60_000, 100)

/** What the host holds of warm sandboxes: directories and runc containers. */
function warmOnHost(w: WarrenFixture): { dirs: string[]; containers: string[] } {
  const dirs = readdirSync(join(w.dataDir, 'sandboxes')).filter((d) => d.startsWith('warm-'))
  const containers = runcContainers(join(w.dataDir, 'runc'))
    .map((c) => c.id)
    .filter((id) => id.startsWith(`${w.prefix}-warm-`))
  return { dirs, containers }
}

function readHostname(id: string, token?: string) {
  return proxyRequest(warren(), {
    path: '/files?path=/etc/hostname&username=user',
    headers: { 'e2b-sandbox-id': id, ...(token ? { 'x-access-token': token } : {}) },
  })
}

// Warm sandboxes are runc's only (docs/architecture.md, "A sandbox on a node"):
// a create that must run under gVisor boots cold, so nothing here applies.
describe.skipIf(underGvisor)('warm pool', () => {
  it('serves a create: the first command runs, and id, env, token and rules are its own', async () => {
    await full(warren())
    const a = await sandboxes.create({
      timeoutMs: 120_000,
      envs: { WHO: 'alpha' },
      network: { denyOut: ['203.0.113.10/32'] },
      metadata: { suite: 'warm' },
    })
    const aFirst = await a.commands.run('hostname; echo "$WHO $E2B_SANDBOX_ID"; cat /etc/hostname')
    const b = await sandboxes.create({ timeoutMs: 120_000, envs: { WHO: 'beta' } })
    const aWarm = warmName(warren(), a.sandboxId)
    const bWarm = warmName(warren(), b.sandboxId)
    expect(aWarm).toMatch(/^warm-/)
    expect(bWarm).toMatch(/^warm-/)
    expect(aWarm).not.toBe(bWarm)

    expect(aFirst.stdout).toBe(`${a.sandboxId}\nalpha ${a.sandboxId}\n${a.sandboxId}\n`)
    const bOut = await b.commands.run(
      'hostname; echo "$WHO $E2B_SANDBOX_ID"; grep -c "$(hostname)" /etc/hosts',
    )
    expect(bOut.stdout).toBe(`${b.sandboxId}\nbeta ${b.sandboxId}\n1\n`)

    // Secure sandboxes: each answers its own token only.
    const ta = (await detail(warren(), a.sandboxId)).envdAccessToken!
    const tb = (await detail(warren(), b.sandboxId)).envdAccessToken!
    expect(ta).not.toBe(tb)
    expect((await readHostname(a.sandboxId)).status).toBe(401)
    expect((await readHostname(a.sandboxId, tb)).status).toBe(401)
    const ok = await readHostname(a.sandboxId, ta)
    expect(ok.status).toBe(200)
    expect(ok.text).toBe(`${a.sandboxId}\n`)

    // a's rule is a's: b reaches what a may not.
    await prepare(a, internet())
    await prepare(b, internet())
    const probes = ['http://203.0.113.10/', 'http://203.0.113.20/']
    const ra = await reach(a, probes)
    const rb = await reach(b, probes)
    expect(probes.map((p) => ra[p])).toEqual(['blocked:connect', 'ok:ip-b.test'])
    expect(probes.map((p) => rb[p])).toEqual(['ok:ip-a.test', 'ok:ip-b.test'])

    // Warm sandboxes are nobody's: neither the API's list nor the node's has them.
    const listed = await Sandbox.list({ ...warren().sdk }).nextItems()
    expect(listed.every((s) => !s.sandboxId.startsWith('warm-'))).toBe(true)
    expect((await nodeSandboxIds(warren())).every((id) => !id.startsWith('warm-'))).toBe(true)

    // The pool refills.
    await full(warren())
    await a.kill()
    await b.kill()
  })

  it('never gives one warm sandbox to two concurrent creates', async () => {
    await full(warren())
    const n = 6
    const all = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        sandboxes.create({ timeoutMs: 120_000, envs: { N: String(i) } }),
      ),
    )
    const warmNames = all.map((s) => warmName(warren(), s.sandboxId))
    const claimed = warmNames.filter((w): w is string => w !== undefined)
    expect(claimed.length).toBeGreaterThanOrEqual(1)
    expect(new Set(claimed).size).toBe(claimed.length)
    // The rest booted cold: an empty pool still creates.
    expect(claimed.length).toBeLessThan(n)
    const outs = await Promise.all(all.map((s) => s.commands.run('hostname; echo "$N"')))
    expect(outs.map((o) => o.stdout)).toEqual(all.map((s, i) => `${s.sandboxId}\n${i}\n`))
    await Promise.all(all.map((s) => s.kill()))
    await full(warren())
  })

  it('pauses, resumes (hot and cold), survives a restart and is killed like any other', async () => {
    await full(warren())
    const sbx = await sandboxes.create({ timeoutMs: 300_000, envs: { KEEP: 'yes' } })
    const id = sbx.sandboxId
    const name = warmName(warren(), id)!
    expect(name).toMatch(/^warm-/)
    await sbx.files.write('/home/user/note', 'kept')

    // Hot: the frozen processes (and the hostname set at claim) come back.
    expect(await pause(warren(), id)).toBe(204)
    expect((await connect(warren(), id)).body.resumedFrom).toBe('memory')
    expect((await sbx.commands.run('hostname; echo $KEEP')).stdout).toBe(`${id}\nyes\n`)

    // The node restarts: the claimed sandbox is adopted, the old warm ones are gone.
    await warren().stop()
    // Only the claimed one's container still goes by a warm name.
    expect(warmOnHost(warren())).toEqual({ dirs: [], containers: [`${warren().prefix}-${name}`] })
    await warren().start()
    expect((await sbx.commands.run('hostname; cat /home/user/note')).stdout).toBe(`${id}\nkept`)
    await full(warren())

    // Cold: a fresh container under the sandbox's own id.
    expect(await pause(warren(), id, false)).toBe(204)
    expect((await connect(warren(), id)).body.resumedFrom).toBe('files')
    expect(warmName(warren(), id)).toBeUndefined()
    expect((await sbx.commands.run('hostname; cat /home/user/note')).stdout).toBe(`${id}\nkept`)

    await sbx.kill()
    // The kill answers before its teardown: the directory goes soon after.
    await eventually(
      'the killed sandbox is gone from the host',
      () => !existsSync(join(warren().dataDir, 'sandboxes', id)),
      10_000,
    )
    const left = warmOnHost(warren())
    expect(left.dirs).not.toContain(name)
    expect(left.containers).not.toContain(`${warren().prefix}-${name}`)
  })

  it('kills a claimed sandbox that ran hot, leaving nothing of it', async () => {
    await full(warren())
    const sbx = await sandboxes.create({ timeoutMs: 120_000 })
    const name = warmName(warren(), sbx.sandboxId)!
    expect(name).toMatch(/^warm-/)
    expect((await api(warren(), 'DELETE', `/sandboxes/${sbx.sandboxId}`)).status).toBe(204)
    // Answered with its processes dead: its cgroup too goes by the warm name.
    const procs = join(sandboxCgroup(warren().prefix, name, 'pids'), 'cgroup.procs')
    if (existsSync(procs)) expect(readFileSync(procs, 'utf8').trim()).toBe('')
    // Its container went by the warm name: that is what the kill must remove.
    await eventually(
      'the claimed container is gone',
      () =>
        !warmOnHost(warren()).containers.includes(`${warren().prefix}-${name}`) &&
        !existsSync(join(warren().dataDir, 'sandboxes', sbx.sandboxId)),
      10_000,
    )
    expect(warmOnHost(warren()).dirs).not.toContain(name)
  })

  it('removes warm sandboxes left by a node that died, and refills', async () => {
    await full(warren())
    await warren().stop(true)
    // Killed hard: its warm sandboxes are still there until the next start.
    expect(warmOnHost(warren()).dirs.length).toBe(POOL)
    const before = warmOnHost(warren()).dirs
    await warren().start()
    await full(warren())
    const after = warmOnHost(warren()).dirs
    expect(after.filter((d) => before.includes(d))).toEqual([])
  })
})
