import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import { create } from '@bufbuild/protobuf'
import { createLogger, type Resolution } from '@warren/shared'
import { type Route, RouteSchema, RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { describe, expect, it } from 'vitest'
import type { ProxyClient, RouteCatalog } from '../catalog/route-catalog.js'
import { KeepaliveReporter } from '../keepalive/reporter.js'
import { Resumer } from '../resume/resumer.js'
import { createEdgeResolver } from './resolve.js'

const ID = 'abcdefghijklmnopqrs0'
const ENVD = 49983
const ENVD_TOKEN = 'envd-token-0123456789'
const TRAFFIC_TOKEN = 'traffic-token-0123456789'

interface RouteExtra {
  autoResume?: boolean
  trafficAccessToken?: string
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

/** The resolver over a one-route catalog, counting the resumes and keepalives it asks for. */
function setup(r: Route) {
  const routes = new Map([[r.sandboxId, r]])
  const catalog = {
    readyWithin: async () => true,
    lookup: async (id: string) => routes.get(id),
    put: (x: Route) => routes.set(x.sandboxId, x),
  }
  const calls = { resume: 0, keepalive: 0 }
  const client = {
    resumeSandbox: async () => {
      calls.resume++
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
    keepalive: new KeepaliveReporter(client, 1000, createLogger('test', 'silent')),
  })
  return { resolver, calls }
}

function request(port: number, headers: Record<string, string> = {}, url = '/'): IncomingMessage {
  const req = new IncomingMessage(new Socket())
  req.url = url
  req.headers = { host: `${port}-${ID}.example.test`, ...headers }
  return req
}

async function resolve(r: Route, req: IncomingMessage) {
  const { resolver, calls } = setup(r)
  return { res: (await resolver.resolve(req)) as Resolution, calls }
}

describe('edge resolver: sandboxes between states', () => {
  it.each([
    ['pausing, auto-resume, user port', RouteState.PAUSING, true, 8000, 503, 0],
    ['pausing, no auto-resume, user port', RouteState.PAUSING, false, 8000, 503, 0],
    // envd's port says 502 for "not running" (isRunning() reads it), with Retry-After.
    ['pausing, auto-resume, envd', RouteState.PAUSING, true, ENVD, 502, 0],
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
