// Remote data planes: one control plane (`warren api` on PostgreSQL, TLS on
// its internal port) and two remote clusters on this machine, `east` and
// `west`, each with its own secret (`warren cluster add`), its own node and
// its own edge proxy. Traffic to a paused auto-resume sandbox through its
// cluster's edge wakes it through the control plane with the request's own
// token and the original request gets its answer; the other cluster's edge,
// secret and nodes know nothing of it; a wrong or missing token wakes
// nothing; with the control plane stopped, running sandboxes still serve
// through their edge, a paused one gets 503 with Retry-After, and once the
// control plane is back the resume works. Keepalive and the 410/502 answers
// are the local edge's.
import { create } from '@bufbuild/protobuf'
import { NodeStatusSchema } from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { api, detail, eventually, sleep } from '../helpers/api-client.js'
import { internalRequest } from '../helpers/cluster-fixture.js'
import { bootOf, type CreatedSandbox, handle, pause, startServer } from '../helpers/lifecycle.js'
import { type ProxyResponse, proxyRequest, sandboxHost } from '../helpers/proxy-client.js'
import {
  type ControlPlane,
  type RemoteCluster,
  startControlPlane,
} from '../helpers/remote-clusters.js'

const PORT = 8000
const ENVD = 49983

let cp: ControlPlane | undefined
let failed = false
beforeAll(async () => {
  cp = await startControlPlane(['east', 'west'])
}, 240_000)
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') failed = true
})
afterAll(async () => {
  if (failed && cp) console.error(`remote cluster logs kept in ${cp.logDir}`)
  await cp?.teardown(failed)
}, 240_000)

const plane = () => {
  if (!cp) throw new Error('control plane not started')
  return cp
}
const east = () => plane().clusters.east!
const west = () => plane().clusters.west!

/**
 * A sandbox of `cluster` that pauses on timeout and wakes on traffic,
 * without public traffic (its user ports want the traffic token), with the
 * test server on PORT (started through the cluster's own edge).
 */
async function serving(
  cluster: RemoteCluster,
  extra: Record<string, unknown> = {},
): Promise<CreatedSandbox> {
  const res = await api(plane(), 'POST', '/v2/sandboxes', {
    json: {
      templateID: 'base',
      timeout: 300,
      cluster: cluster.name,
      lifecycle: { onTimeout: 'pause', autoResume: true },
      network: { allowPublicTraffic: false },
      metadata: { suite: 'remote-edge' },
      ...extra,
    },
  })
  expect(res.status, res.text).toBe(201)
  const c = res.body as CreatedSandbox
  expect(c.trafficAccessToken).toBeTruthy()
  await startServer(handle(cluster, c), PORT)
  return c
}

/** A request through a cluster's edge to a port of a sandbox. */
function edge(
  cluster: RemoteCluster,
  id: string,
  port: number,
  headers: Record<string, string> = {},
  path = '/',
): Promise<ProxyResponse> {
  return proxyRequest(cluster.setup, {
    host: sandboxHost(cluster.setup, id, port),
    path,
    headers,
  })
}

const withToken = (c: CreatedSandbox) => ({ 'e2b-traffic-access-token': c.trafficAccessToken! })
const stateOf = async (id: string) => (await detail(plane(), id)).state
/** Resumes by traffic so far, from the control plane's /metrics (its own secret, over TLS). */
async function resumes(): Promise<number> {
  const res = await internalRequest(`${plane().internalUrl}/metrics`, plane().ca, {
    headers: { 'x-warren-cluster-secret': plane().secret },
  })
  expect(res.status, res.body).toBe(200)
  const line = res.body
    .split('\n')
    .find((l) => l.startsWith('warren_sandboxes_resumed_total{from="memory",trigger="traffic"} '))
  return line ? Number(line.split(' ').at(-1)) : 0
}

describe('a paused auto-resume sandbox of a remote cluster', () => {
  it("is woken by a request through its cluster's edge, which gets its answer (traffic token, user port)", async () => {
    const c = await serving(east())
    const id = c.sandboxID
    const first = await edge(east(), id, PORT, withToken(c))
    expect(first.status, first.text).toBe(200)
    const boot = bootOf(first.text)
    expect(await pause(plane(), id)).toBe(204)
    expect(await stateOf(id)).toBe('paused')

    const res = await edge(east(), id, PORT, withToken(c), '/after-pause')
    expect(res.status, res.text).toBe(200)
    // The same server process: the sandbox was thawed, not rebooted.
    expect(bootOf(res.text)).toBe(boot)
    expect(await detail(plane(), id)).toMatchObject({ state: 'running', resumedFrom: 'memory' })
    // It lives on the east node, which the east edge reached over TLS.
    const { nodes } = await east().nodeService.listNodes({})
    expect(nodes.map((n) => n.nodeId)).toEqual([east().nodeId])
  })

  it('many requests at once share one resume', async () => {
    const c = await serving(east())
    const id = c.sandboxID
    expect(await pause(plane(), id)).toBe(204)
    const before = await resumes()
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => edge(east(), id, PORT, withToken(c), `/burst-${i}`)),
    )
    for (const a of answers) expect(a.status, a.text).toBe(200)
    expect(new Set(answers.map((a) => bootOf(a.text))).size).toBe(1)
    expect(await resumes()).toBe(before + 1)
  })

  it("is refused through the other cluster's edge, and by the other cluster's secret", async () => {
    const c = await serving(east())
    const id = c.sandboxID
    expect(await pause(plane(), id)).toBe(204)

    // West's edge has no route for it, and the control plane gives it none.
    const res = await edge(west(), id, PORT, withToken(c))
    expect(res.status, res.text).toBe(502)
    expect(res.json).toMatchObject({ sandboxId: id, message: 'The sandbox was not found' })
    // Nor through envd's port with its access token.
    const envd = await edge(west(), id, ENVD, { 'x-access-token': c.envdAccessToken! }, '/health')
    expect(envd.status, envd.text).toBe(502)
    expect(await stateOf(id)).toBe('paused')

    // West's secret at the control plane: no route, no resume, as if it did not exist.
    expect((await west().proxyService.getRoute({ sandboxId: id })).route).toBeUndefined()
    await expect(
      west().proxyService.resumeSandbox({
        sandboxId: id,
        port: PORT,
        trafficAccessToken: c.trafficAccessToken!,
      }),
    ).rejects.toMatchObject({ code: 'not_found' })
    expect(await stateOf(id)).toBe('paused')
    // East's secret sees it.
    expect((await east().proxyService.getRoute({ sandboxId: id })).route?.sandboxId).toBe(id)

    // Each secret lists its own cluster's node only; the control plane's own lists neither.
    expect((await west().nodeService.listNodes({})).nodes.map((n) => n.nodeId)).toEqual([
      west().nodeId,
    ])
    expect((await plane().nodeServiceWith(plane().secret).listNodes({})).nodes).toEqual([])
    // East's secret cannot cordon west's node.
    await expect(
      east().nodeService.setSchedulable({ nodeId: west().nodeId, schedulable: 'cordoned' }),
    ).rejects.toMatchObject({ code: 'not_found' })
    // A node of west presenting east's secret is refused.
    const status = create(NodeStatusSchema, {
      nodeId: 'west-impostor',
      cluster: 'west',
      rpcUrl: 'https://127.0.0.1:9',
      proxyUrl: 'https://127.0.0.1:9',
    })
    await expect(east().nodeService.heartbeat({ status })).rejects.toMatchObject({
      code: 'forbidden',
    })
    // West's node id taken over by east's secret: refused too.
    const takeover = create(NodeStatusSchema, { ...status, nodeId: west().nodeId, cluster: 'east' })
    await expect(east().nodeService.heartbeat({ status: takeover })).rejects.toMatchObject({
      code: 'conflict',
    })
  })

  it('is not woken by a request with a wrong or missing token', async () => {
    const c = await serving(east())
    const id = c.sandboxID
    expect(await pause(plane(), id)).toBe(204)
    const before = await resumes()

    const missing = await edge(east(), id, PORT)
    expect(missing.status, missing.text).toBe(403)
    const wrong = await edge(east(), id, PORT, { 'e2b-traffic-access-token': 'not-the-token' })
    expect(wrong.status, wrong.text).toBe(403)
    const envd = await edge(east(), id, ENVD, { 'x-access-token': 'not-the-token' }, '/envs')
    expect(envd.status, envd.text).toBe(403)
    // The control plane judges the token itself, whatever an edge let through.
    await expect(
      east().proxyService.resumeSandbox({
        sandboxId: id,
        port: PORT,
        trafficAccessToken: 'not-the-token',
      }),
    ).rejects.toMatchObject({ code: 'forbidden' })
    await expect(
      east().proxyService.resumeSandbox({ sandboxId: id, port: ENVD }),
    ).rejects.toMatchObject({ code: 'forbidden' })
    expect(await stateOf(id)).toBe('paused')
    expect(await resumes()).toBe(before)
  })
})

describe('the remote edge answers as the local one', () => {
  it('410 with the reason on a user port and 502 on envd for a killed sandbox', async () => {
    const c = await serving(west())
    const id = c.sandboxID
    expect((await api(plane(), 'DELETE', `/sandboxes/${id}`)).status).toBe(204)
    await eventually(
      'the west edge routes it as killed',
      async () => (await edge(west(), id, PORT, withToken(c))).status === 410,
      10_000,
      100,
    )
    const user = await edge(west(), id, PORT, withToken(c))
    expect(user.headers['x-warren-kill-reason']).toBe('request')
    const envd = await edge(west(), id, ENVD, { 'x-access-token': c.envdAccessToken! }, '/health')
    expect(envd.status, envd.text).toBe(502)
  })

  it('traffic through it keeps a keepalive sandbox alive', async () => {
    const c = await serving(west(), {
      timeout: 20,
      lifecycle: { onTimeout: 'kill', keepalive: { traffic: { enabled: true } } },
    })
    const id = c.sandboxID
    const endAt = Date.parse((await detail(plane(), id)).endAt)
    await sleep(2000)
    expect((await edge(west(), id, PORT, withToken(c))).status).toBe(200)
    await eventually(
      'the lease was extended by the traffic',
      async () => Date.parse((await detail(plane(), id)).endAt) > endAt + 1000,
      10_000,
      200,
    )
  })
})

describe('with the control plane stopped', () => {
  it('running sandboxes still serve through their edge; a paused one gets 503 with Retry-After, and wakes once it is back', async () => {
    const running = await serving(east())
    const asleep = await serving(east())
    expect(await pause(plane(), asleep.sandboxID)).toBe(204)
    const boot = bootOf((await edge(east(), running.sandboxID, PORT, withToken(running))).text)

    await plane().stopApi()
    try {
      for (let i = 0; i < 5; i++) {
        const res = await edge(east(), running.sandboxID, PORT, withToken(running), `/down-${i}`)
        expect(res.status, res.text).toBe(200)
        expect(bootOf(res.text)).toBe(boot)
      }
      const wake = await edge(east(), asleep.sandboxID, PORT, withToken(asleep))
      expect(wake.status, wake.text).toBe(503)
      expect(wake.headers['retry-after']).toBe('1')
    } finally {
      await plane().startApi()
    }
    await eventually(
      'the paused sandbox wakes through its edge',
      async () => (await edge(east(), asleep.sandboxID, PORT, withToken(asleep))).status === 200,
      60_000,
      500,
    )
    expect(await stateOf(asleep.sandboxID)).toBe('running')
  })
})
