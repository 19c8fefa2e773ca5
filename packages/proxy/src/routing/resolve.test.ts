import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import { create } from '@bufbuild/protobuf'
import { Code, ConnectError } from '@connectrpc/connect'
import {
  createLogger,
  fileSignature,
  type NodeResolver,
  type Resolution,
  sandboxPortTarget,
} from '@warren/shared'
import {
  type ResumeSandboxRequest,
  type Route,
  RouteSchema,
  RouteState,
} from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { describe, expect, it } from 'vitest'
import type { ProxyClient, RouteCatalog } from '../catalog/route-catalog.js'
import { KeepaliveReporter, reportKeepalive } from '../keepalive/reporter.js'
import { Resumer } from '../resume/resumer.js'
import { createEdgeResolver } from './resolve.js'
import { SignatureRoutes } from './signatures.js'

const ID = 'abcdefghijklmnopqrs0'
const ENVD = 49983
const ENVD_TOKEN = 'envd-token-0123456789'
const TRAFFIC_TOKEN = 'traffic-token-0123456789'

interface RouteExtra {
  autoResume?: boolean
  trafficAccessToken?: string
  sandboxId?: string
  envdAccessToken?: string
}

function route(state: RouteState, extra: RouteExtra = {}): Route {
  return create(RouteSchema, {
    sandboxId: ID,
    state,
    nodeProxyUrl: 'http://127.0.0.1:9',
    envdAccessToken: ENVD_TOKEN,
    ...extra,
  })
}

type ResumeAnswer = (req: ResumeSandboxRequest) => Promise<{ route?: Route }>

/**
 * The resolver over a one-route catalog, counting the resumes and keepalives
 * it asks for (and keeping what each resume call said); `answer` plays the
 * control plane's ResumeSandbox.
 */
function setup(
  r: Route,
  current: Route = r,
  answer?: ResumeAnswer,
  behind: Route[] = [],
  localNodes?: Map<string, NodeResolver>,
) {
  const routes = new Map([[r.sandboxId, r]])
  const catalog = {
    readyWithin: async () => true,
    // Routes its source holds that this copy has not applied yet (`behind`).
    caughtUp: async () => {
      for (const x of behind.splice(0)) routes.set(x.sandboxId, x)
      catalog.tokenGeneration++
    },
    lookup: async (id: string) => routes.get(id),
    peek: (id: string) => routes.get(id),
    recentMiss: () => false,
    noteMiss: () => {},
    // What the API says now (its store), which the local copy may lag.
    confirm: async (id: string) => (id === current.sandboxId ? current : undefined),
    put: (x: Route) => routes.set(x.sandboxId, x),
    tokenGeneration: 1,
    *withEnvdTokens() {
      for (const x of routes.values()) if (x.envdAccessToken) yield x
    },
  }
  const calls = { resume: 0, keepalive: 0, resumeRequests: [] as ResumeSandboxRequest[] }
  const client = {
    resumeSandbox: async (req: ResumeSandboxRequest) => {
      calls.resume++
      calls.resumeRequests.push(req)
      if (answer) return answer(req)
      return { route: route(RouteState.RUNNING, { autoResume: r.autoResume }) }
    },
    keepAliveSandbox: async () => {
      calls.keepalive++
      return {}
    },
  } as unknown as ProxyClient
  const resolver = createEdgeResolver({
    catalog: catalog as unknown as RouteCatalog,
    trustedHops: 0,
    resumer: new Resumer(client, catalog as unknown as RouteCatalog),
    keepalive: new KeepaliveReporter(1000, reportKeepalive(client, createLogger('test', 'silent'))),
    signatures: new SignatureRoutes(catalog as unknown as RouteCatalog),
    clusterSecret: 'resolve-test-cluster-secret',
    localNodes,
  })
  return { resolver, calls }
}

function request(port: number, headers: Record<string, string> = {}, url = '/'): IncomingMessage {
  const req = new IncomingMessage(new Socket())
  req.url = url
  req.headers = { host: `${port}-${ID}.example.test`, ...headers }
  return req
}

/** A signed `/files` URL fetched from the proxy's own address: no sandbox in host or headers. */
function signed(method: 'GET' | 'POST', opts: { token?: string; expiration?: number } = {}) {
  const path = '/home/user/a.txt'
  const operation = method === 'GET' ? 'read' : 'write'
  const signature = fileSignature({
    path,
    operation,
    user: 'user',
    token: opts.token ?? ENVD_TOKEN,
    expiration: opts.expiration,
  })
  const q = new URLSearchParams({ path, username: 'user', signature })
  if (opts.expiration !== undefined) q.set('signature_expiration', String(opts.expiration))
  const req = new IncomingMessage(new Socket())
  req.method = method
  req.url = `/files?${q}`
  req.headers = { host: '127.0.0.1:3002' }
  return req
}

async function resolve(r: Route, req: IncomingMessage, current: Route = r, answer?: ResumeAnswer) {
  const { resolver, calls } = setup(r, current, answer)
  return { res: (await resolver.resolve(req)) as Resolution, calls }
}

describe('edge resolver: at once', () => {
  it('lets a running sandbox the catalog holds through without a promise; the rest is judged in full', async () => {
    const running = setup(route(RouteState.RUNNING)).resolver
    const now = running.resolve(request(8000))
    expect(now).not.toBeInstanceOf(Promise)
    expect(now).toMatchObject({ target: { host: '127.0.0.1', port: 9 } })
    // envd's /init never takes the quick way (nor any way: 404).
    const init = running.resolve(request(ENVD, {}, '/init'))
    expect(init).toBeInstanceOf(Promise)
    expect(await init).toMatchObject({ error: { status: 404 } })
    // A wrong traffic token, a paused sandbox: the full path, with its answers.
    const guarded = setup(route(RouteState.RUNNING, { trafficAccessToken: TRAFFIC_TOKEN })).resolver
    const refused = guarded.resolve(request(8000, { 'e2b-traffic-access-token': 'wrong' }))
    expect(refused).toBeInstanceOf(Promise)
    expect(await refused).toMatchObject({ error: { status: 403 } })
    expect(
      guarded.resolve(request(8000, { 'e2b-traffic-access-token': TRAFFIC_TOKEN })),
    ).not.toBeInstanceOf(Promise)
    const paused = setup(route(RouteState.PAUSED)).resolver.resolve(request(8000))
    expect(paused).toBeInstanceOf(Promise)
    expect(await paused).toMatchObject({ error: { status: 409 } })
  })
})

describe('edge resolver: pinned connections', () => {
  /** A node in the edge's process that lets every request through to the sandbox. */
  const local = (tls = false): Map<string, NodeResolver> =>
    new Map([
      [
        'http://127.0.0.1:9',
        (_req, h) => ({
          target: sandboxPortTarget(
            {
              host: '10.0.0.2',
              tls,
              window: { id: 1, opts: {} as never, acquire: async () => ({}) as never },
            },
            h,
          ),
        }),
      ],
    ])
  const resolved = (req: IncomingMessage, tls = false) =>
    setup(route(RouteState.RUNNING), undefined, undefined, [], local(tls)).resolver.resolve(
      req,
    ) as Resolution

  it('lets plain HTTP to a sandbox port through its own node be pinned, on the routing headers', () => {
    const res = resolved(request(8000))
    expect(res).toMatchObject({
      target: {
        host: '10.0.0.2',
        pin: {
          sandboxId: ID,
          same: [
            'host',
            'e2b-sandbox-id',
            'e2b-sandbox-port',
            'e2b-traffic-access-token',
            'x-forwarded-for',
          ],
        },
      },
    })
  })

  it("never envd's port, a TLS client, a TLS sandbox port, or a node proxy elsewhere", () => {
    const envd = resolved(request(ENVD))
    expect('target' in envd && envd.target.pin).toBe(undefined)
    const tlsReq = request(8000)
    Object.assign(tlsReq.socket, { encrypted: true })
    const tlsClient = resolved(tlsReq)
    expect('target' in tlsClient && tlsClient.target.pin).toBe(undefined)
    const tlsPort = resolved(request(8000), true)
    expect('target' in tlsPort && tlsPort.target.pin).toBe(undefined)
    const remote = setup(route(RouteState.RUNNING)).resolver.resolve(request(8000)) as Resolution
    expect('target' in remote && remote.target.pin).toBe(undefined)
  })
})

describe('edge resolver: sandboxes between states', () => {
  it.each([
    // Caught mid-pause, an auto-resume sandbox is woken once the pause is over.
    ['pausing, auto-resume, user port', RouteState.PAUSING, true, 8000, 0, 1],
    ['pausing, auto-resume, envd', RouteState.PAUSING, true, ENVD, 0, 1],
    ['pausing, no auto-resume, user port', RouteState.PAUSING, false, 8000, 503, 0],
    // envd's port says 502 for "not running" (isRunning() reads it), with Retry-After.
    ['pausing, no auto-resume, envd', RouteState.PAUSING, false, ENVD, 502, 0],
    ['resuming, no auto-resume', RouteState.RESUMING, false, 8000, 503, 0],
    ['paused, no auto-resume, user port', RouteState.PAUSED, false, 8000, 409, 0],
    ['paused, no auto-resume, envd', RouteState.PAUSED, false, ENVD, 502, 0],
    ['paused, auto-resume', RouteState.PAUSED, true, 8000, 0, 1],
    ['resuming, auto-resume: joins the resume', RouteState.RESUMING, true, 8000, 0, 1],
  ])('%s', async (_name, state, autoResume, port, status, resumes) => {
    const headers: Record<string, string> = port === ENVD ? { 'x-access-token': ENVD_TOKEN } : {}
    const { res, calls } = await resolve(route(state, { autoResume }), request(port, headers))
    expect(calls.resume).toBe(resumes)
    if (!status) {
      expect('target' in res && res.target.port).toBe(9)
      return
    }
    expect('error' in res && res.error).toMatchObject({ status, sandboxId: ID })
    if (status === 503) expect('error' in res && res.error.retryAfter).toBe(1)
  })

  it.each([
    ['paused', RouteState.PAUSED],
    ['killed', RouteState.KILLED],
    ['pausing', RouteState.PAUSING],
  ])(
    'a local copy that says %s is confirmed with the API first: it may lag another replica',
    async (_name, state) => {
      const { res, calls } = await resolve(route(state), request(8000), route(RouteState.RUNNING))
      expect('target' in res && res.target.port).toBe(9)
      expect(calls.resume).toBe(0)
    },
  )
})

describe('edge resolver: who may wake a paused sandbox', () => {
  const paused = (extra: RouteExtra = {}) =>
    route(RouteState.PAUSED, { autoResume: true, ...extra })

  it.each([
    ['envd without X-Access-Token', paused(), ENVD, {}, 403, 0],
    ['envd with a wrong X-Access-Token', paused(), ENVD, { 'x-access-token': 'nope' }, 403, 0],
    ['envd with its X-Access-Token', paused(), ENVD, { 'x-access-token': ENVD_TOKEN }, 0, 1],
    [
      'user port without the traffic token',
      paused({ trafficAccessToken: TRAFFIC_TOKEN }),
      8000,
      {},
      403,
      0,
    ],
    [
      'user port with a wrong traffic token',
      paused({ trafficAccessToken: TRAFFIC_TOKEN }),
      8000,
      { 'e2b-traffic-access-token': `${TRAFFIC_TOKEN}x` },
      403,
      0,
    ],
    [
      'user port with the traffic token',
      paused({ trafficAccessToken: TRAFFIC_TOKEN }),
      8000,
      { 'e2b-traffic-access-token': TRAFFIC_TOKEN },
      0,
      1,
    ],
    ['user port of a public sandbox', paused(), 8000, {}, 0, 1],
  ])('%s', async (_name, r, port, headers: Record<string, string>, status, resumes) => {
    const { res, calls } = await resolve(r, request(port, headers))
    expect(calls.resume).toBe(resumes)
    if (status) expect('error' in res && res.error).toMatchObject({ status, sandboxId: ID })
    else expect('target' in res).toBe(true)
  })

  it('many requests for one paused sandbox share one resume', async () => {
    const { resolver, calls } = setup(route(RouteState.PAUSED, { autoResume: true }))
    const all = await Promise.all(Array.from({ length: 50 }, () => resolver.resolve(request(8000))))
    expect(all.every((r) => 'target' in r)).toBe(true)
    expect(calls.resume).toBe(1)
  })
})

describe('edge resolver: signed /files URLs without a sandbox header', () => {
  const now = Math.floor(Date.now() / 1000)
  it.each([
    ['a download URL', RouteState.RUNNING, signed('GET'), 0, 0],
    ['an upload URL', RouteState.RUNNING, signed('POST'), 0, 0],
    ['an unexpired URL', RouteState.RUNNING, signed('GET', { expiration: now + 60 }), 0, 0],
    ['an expired URL', RouteState.RUNNING, signed('GET', { expiration: now - 5 }), 401, 0],
    ['a URL signed with another token', RouteState.RUNNING, signed('GET', { token: 'x' }), 401, 0],
    // A valid signature proves the envd token: it may wake the sandbox.
    ['a paused auto-resume sandbox', RouteState.PAUSED, signed('POST'), 0, 1],
  ])('%s', async (_name, state, req, status, resumes) => {
    const { res, calls } = await resolve(route(state, { autoResume: true }), req)
    expect(calls.resume).toBe(resumes)
    if (status) expect('error' in res && res.error).toMatchObject({ status })
    else expect('target' in res && res.target.setHeaders?.['x-warren-sandbox-id']).toBe(ID)
  })

  it("finds a sandbox this worker's copy has not applied yet, once it caught up", async () => {
    const other = route(RouteState.RUNNING, { sandboxId: 'other', envdAccessToken: 'y' })
    const newest = route(RouteState.RUNNING)
    const { resolver } = setup(other, other, undefined, [newest])
    const res = (await resolver.resolve(signed('GET'))) as Resolution
    expect('target' in res && res.target.setHeaders?.['x-warren-sandbox-id']).toBe(ID)
  })

  it('a request with neither a sandbox nor a signature names no sandbox', async () => {
    const req = signed('GET')
    req.url = '/files?path=a.txt'
    const { res } = await resolve(route(RouteState.RUNNING), req)
    expect('error' in res && res.error).toMatchObject({ status: 400 })
  })
})

describe('edge resolver: the control plane behind a resume', () => {
  const paused = route(RouteState.PAUSED, { autoResume: true, trafficAccessToken: TRAFFIC_TOKEN })
  const token = { 'e2b-traffic-access-token': TRAFFIC_TOKEN }

  it("is told the port and the request's own credentials, and the resumed hop retries its dial", async () => {
    const { res, calls } = await resolve(paused, request(8000, { ...token, 'x-access-token': 'e' }))
    expect(calls.resumeRequests).toEqual([
      expect.objectContaining({
        sandboxId: ID,
        port: 8000,
        trafficAccessToken: TRAFFIC_TOKEN,
        envdAccessToken: 'e',
      }),
    ])
    expect('target' in res && res.target.dialRetry).toMatchObject({ retries: expect.any(Number) })
  })

  it('passes a signed /files request along for the control plane to check', async () => {
    const req = signed('POST')
    const { calls } = await resolve(route(RouteState.PAUSED, { autoResume: true }), req)
    expect(calls.resumeRequests[0]?.signedFiles).toMatchObject({ method: 'POST', url: req.url })
  })

  it.each([
    ['refuses the credentials: 403', Code.PermissionDenied, 403, undefined],
    ['is unreachable: 503 with Retry-After', Code.Unavailable, 503, 1],
  ])('%s', async (_name, code, status, retryAfter) => {
    const { res } = await resolve(paused, request(8000, token), paused, async () => {
      throw new ConnectError('no', code)
    })
    expect('error' in res && res.error).toMatchObject({ status, sandboxId: ID })
    expect('error' in res && res.error.retryAfter).toBe(retryAfter)
  })

  it.each([
    ['an empty node address', ''],
    ['a wildcard node address', 'http://0.0.0.0:5007'],
    ['no URL at all', 'node-a:5007'],
  ])(
    'a resumed route with %s is unavailable (503, Retry-After), not a success',
    async (_n, url) => {
      const { res } = await resolve(paused, request(8000, token), paused, async () => ({
        route: create(RouteSchema, { sandboxId: ID, state: RouteState.RUNNING, nodeProxyUrl: url }),
      }))
      expect('error' in res && res.error).toMatchObject({ status: 503, retryAfter: 1 })
    },
  )

  it('a resume that brings no route is unavailable (503, Retry-After)', async () => {
    const { res } = await resolve(paused, request(8000, token), paused, async () => ({}))
    expect('error' in res && res.error).toMatchObject({ status: 503, retryAfter: 1 })
  })

  it('a running route whose node has no address yet is 503 with Retry-After', async () => {
    const r = create(RouteSchema, { sandboxId: ID, state: RouteState.RUNNING, nodeProxyUrl: '' })
    const { res, calls } = await resolve(r, request(8000))
    expect('error' in res && res.error).toMatchObject({ status: 503, retryAfter: 1 })
    expect(calls.resume).toBe(0)
  })
})

describe('edge resolver: a catalog miss', () => {
  const other = 'zyxwvutsrqponmlkjih0'
  const missing = (headers: Record<string, string> = {}) => {
    const req = request(8000, headers)
    req.headers.host = `8000-${other}.example.test`
    return req
  }

  it("asks the control plane's ResumeSandbox with the request's credentials, and follows the route it gets", async () => {
    const token = { 'e2b-traffic-access-token': TRAFFIC_TOKEN }
    const { res, calls } = await resolve(
      route(RouteState.RUNNING),
      missing(token),
      undefined,
      async () => ({
        route: create(RouteSchema, {
          sandboxId: other,
          state: RouteState.RUNNING,
          nodeProxyUrl: 'http://127.0.0.1:10',
          trafficAccessToken: TRAFFIC_TOKEN,
        }),
      }),
    )
    expect(calls.resumeRequests).toEqual([
      expect.objectContaining({ sandboxId: other, port: 8000, trafficAccessToken: TRAFFIC_TOKEN }),
    ])
    expect('target' in res && res.target.port).toBe(10)
  })

  it('still applies the traffic token to the route it gets', async () => {
    const { res } = await resolve(route(RouteState.RUNNING), missing(), undefined, async () => ({
      route: create(RouteSchema, {
        sandboxId: other,
        state: RouteState.RUNNING,
        nodeProxyUrl: 'http://127.0.0.1:10',
        trafficAccessToken: TRAFFIC_TOKEN,
      }),
    }))
    expect('error' in res && res.error).toMatchObject({ status: 403, sandboxId: other })
  })

  it.each([
    ['knows no such sandbox: 502', Code.NotFound, 502, undefined],
    ['is unreachable: 503 with Retry-After', Code.Unavailable, 503, 1],
  ])('when the control plane %s', async (_name, code, status, retryAfter) => {
    const { res } = await resolve(route(RouteState.RUNNING), missing(), undefined, async () => {
      throw new ConnectError('no', code)
    })
    expect('error' in res && res.error).toMatchObject({ status, sandboxId: other })
    expect('error' in res && res.error.retryAfter).toBe(retryAfter)
  })
})
