import { SingleFlight, type WakeCredentials, WarrenError } from '@warren/shared'
import type { Route } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import type { ProxyClient, RouteCatalog } from '../catalog/route-catalog.js'

/**
 * The longest a request waits for its sandbox to wake: a pause under way
 * (the API waits up to a minute for it to settle), then the resume itself.
 */
const RESUME_WAIT_MS = 90_000

/**
 * Resumes paused sandboxes for traffic, through the control plane's
 * ResumeSandbox with the request's own credentials (which it judges before
 * it resumes). Requests for one sandbox that bring the same credentials
 * share one call; different credentials are judged each on their own (the
 * control plane still runs one resume for all of them). The resulting route
 * goes into the catalog at once, ahead of the catalog stream.
 */
export class Resumer {
  private readonly inflight = new SingleFlight<Route>()

  constructor(
    private readonly client: ProxyClient,
    private readonly catalog: RouteCatalog,
  ) {}

  resume(sandboxId: string, creds: WakeCredentials): Promise<Route> {
    const key = JSON.stringify([sandboxId, creds])
    return this.inflight.run(key, async () => {
      const { port, envdAccessToken, trafficAccessToken, signedFiles } = creds
      const res = await this.client.resumeSandbox(
        {
          sandboxId,
          port,
          ...(envdAccessToken !== undefined ? { envdAccessToken } : {}),
          ...(trafficAccessToken !== undefined ? { trafficAccessToken } : {}),
          ...(signedFiles ? { signedFiles } : {}),
        },
        { timeoutMs: RESUME_WAIT_MS },
      )
      if (!res.route)
        throw new WarrenError('unavailable', `the control plane sent no route for ${sandboxId}`)
      this.catalog.put(res.route)
      return res.route
    })
  }
}
