import { createRoute, z } from '@hono/zod-openapi'
import {
  type NetworkConfig,
  networkConfigSchema,
  parseNetworkConfig,
  WarrenError,
} from '@warren/shared'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, noQuery, sandboxIdParams } from '../params.js'

// Whether public traffic is allowed and which ports speak HTTPS are fixed at
// create; the rest is replaced.
const body = networkConfigSchema
  .omit({ allowPublicTraffic: true, httpsPorts: true })
  .extend({ allow_internet_access: z.boolean().optional() })
  .openapi('SandboxNetworkUpdateConfig')

const route = createRoute({
  method: 'put',
  path: '/sandboxes/{sandboxID}/network',
  request: { params: sandboxIdParams, query: noQuery, body: jsonBody(body) },
  responses: {
    204: { description: 'The whole network config was replaced (omitted fields are cleared)' },
    ...errorResponses,
  },
})

/**
 * Replaces the whole network config of a running sandbox: egress, ingress,
 * host masking. Whether public traffic is allowed (the traffic token is the
 * sandbox's) and its HTTPS ports are fixed at create and kept.
 */
export function registerNetwork(app: App, deps: RouteDeps): void {
  app.openapi(route, async (c) => {
    // The validator reads a request without a JSON body as {}, which here
    // would clear every rule: only an explicit `{}` may mean that.
    if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(c.req.header('content-type') ?? '')) {
      throw new WarrenError(
        'invalid_argument',
        'a JSON body is required: the whole network config ({} clears every rule)',
      )
    }
    const req = c.req.valid('json')
    const { sandboxID } = c.req.valid('param')
    const team = c.get('team')
    const allowInternetAccess = req.allow_internet_access ?? null
    const current = await deps.engine.get(team, sandboxID)
    const network: NetworkConfig = {
      ...(req.allowOut ? { allowOut: req.allowOut } : {}),
      ...(req.denyOut ? { denyOut: req.denyOut } : {}),
      ...(req.allowIn ? { allowIn: req.allowIn } : {}),
      ...(req.denyIn ? { denyIn: req.denyIn } : {}),
      ...(req.maskRequestHost !== undefined ? { maskRequestHost: req.maskRequestHost } : {}),
      ...(current.network.allowPublicTraffic !== undefined
        ? { allowPublicTraffic: current.network.allowPublicTraffic }
        : {}),
      ...(current.network.httpsPorts ? { httpsPorts: current.network.httpsPorts } : {}),
    }
    parseNetworkConfig(network, allowInternetAccess)
    await deps.engine.updateNetwork(team, sandboxID, network, allowInternetAccess)
    return c.body(null, 204)
  })
}
