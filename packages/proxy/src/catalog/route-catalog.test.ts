import { setTimeout as sleep } from 'node:timers/promises'
import { create } from '@bufbuild/protobuf'
import { Code, ConnectError, createRouterTransport } from '@connectrpc/connect'
import { createLogger } from '@warren/shared'
import {
  ProxyService,
  type Route,
  RouteSchema,
  RouteState,
} from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { afterEach, describe, expect, it } from 'vitest'
import { RouteCatalog } from './route-catalog.js'

const ID = 'abcdefghijklmnopqrs0'

function route(state: RouteState): Route {
  return create(RouteSchema, { sandboxId: ID, state, nodeProxyUrl: 'http://127.0.0.1:9' })
}

/**
 * A control plane whose stream sends one snapshot (the sandbox running) and
 * then breaks for good — the edge's copy is no longer followed — and whose
 * GetRoute answers with `getRoute`.
 */
function controlPlane(getRoute: () => Promise<Route>) {
  let asks = 0
  let streams = 0
  const transport = createRouterTransport(({ service }) => {
    service(ProxyService, {
      async *watchCatalog() {
        if (streams++ > 0) throw new ConnectError('away', Code.Unavailable)
        yield { event: { case: 'snapshot', value: { routes: [route(RouteState.RUNNING)] } } }
        throw new ConnectError('restarting', Code.Unavailable)
      },
      async getRoute() {
        asks++
        return { route: await getRoute() }
      },
      resumeSandbox: () => Promise.reject(new ConnectError('unused', Code.Unimplemented)),
      keepAliveSandbox: () => Promise.resolve({}),
    })
  })
  return { transport, asks: () => asks }
}

const catalogs: RouteCatalog[] = []
afterEach(async () => {
  await Promise.all(catalogs.splice(0).map((c) => c.stop()))
})

async function stale(transport: ReturnType<typeof controlPlane>['transport']) {
  const catalog = new RouteCatalog(transport, createLogger('test', 'silent'))
  catalogs.push(catalog)
  catalog.start()
  expect(await catalog.readyWithin(2000)).toBe(true)
  // Past the snapshot, the stream broke: the copy is not followed any more.
  await sleep(50)
  return catalog
}

describe('RouteCatalog while its stream is down', () => {
  it('asks again after a refused ask, and sees a pause made meanwhile', async () => {
    let answer: () => Promise<Route> = () =>
      Promise.reject(new ConnectError('connection refused', Code.Unavailable))
    const cp = controlPlane(() => answer())
    const catalog = await stale(cp.transport)
    // The API is down: the copy serves the running sandbox.
    expect((await catalog.lookup(ID))?.state).toBe(RouteState.RUNNING)
    // It comes back and pauses the sandbox before the stream is back.
    answer = () => Promise.resolve(route(RouteState.PAUSED))
    expect((await catalog.lookup(ID))?.state).toBe(RouteState.PAUSED)
    expect(cp.asks()).toBe(2)
  })

  it('after an ask that timed out, serves running sandboxes from the copy without asking', async () => {
    const cp = controlPlane(async () => {
      await sleep(300)
      throw new ConnectError('deadline exceeded', Code.DeadlineExceeded)
    })
    const catalog = await stale(cp.transport)
    expect((await catalog.lookup(ID))?.state).toBe(RouteState.RUNNING)
    expect((await catalog.lookup(ID))?.state).toBe(RouteState.RUNNING)
    expect(cp.asks()).toBe(1)
  })
})
