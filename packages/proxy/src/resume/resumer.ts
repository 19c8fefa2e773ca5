import { SingleFlight } from '@warren/shared'
import type { Route } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import type { ProxyClient, RouteCatalog } from '../catalog/route-catalog.js'

/**
 * Resumes paused sandboxes for traffic: however many requests arrive for one
 * sandbox, one ResumeSandbox call is in flight and every request waits for
 * its outcome. The resulting route goes into the catalog at once, ahead of
 * the catalog stream.
 */
export class Resumer {
  private readonly inflight = new SingleFlight<Route>()

  constructor(
    private readonly client: ProxyClient,
    private readonly catalog: RouteCatalog,
  ) {}

  resume(sandboxId: string): Promise<Route> {
    return this.inflight.run(sandboxId, async () => {
      const res = await this.client.resumeSandbox({ sandboxId })
      if (res.route) this.catalog.put(res.route)
      return res.route!
    })
  }
}
