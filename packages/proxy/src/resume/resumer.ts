import { SingleFlight } from '@warren/shared'
import type { Route } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import type { ProxyClient, RouteCatalog } from '../catalog/route-catalog.js'

/**
 * The longest a request waits for its sandbox to wake: a pause under way
 * (the API waits up to a minute for it to settle), then the resume itself.
 */
const RESUME_WAIT_MS = 90_000

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
      const res = await this.client.resumeSandbox({ sandboxId }, { timeoutMs: RESUME_WAIT_MS })
      if (res.route) this.catalog.put(res.route)
      return res.route!
    })
  }
}
