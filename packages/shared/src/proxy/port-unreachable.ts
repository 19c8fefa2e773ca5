import { ConnectWindowError } from './connect-window.js'
import type { ProxyError } from './errors.js'

/**
 * Why a running sandbox's port could not be reached. 502 means no listener
 * (refused, after the retries); a port that takes SYNs in but answers none
 * within the connect budget has a listener, so that is a timeout (504); a
 * request that got no place in the port's connect window is told to retry.
 * Shared by the node proxy and a proxy worker forwarding for it.
 */
export function sandboxPortUnreachable(err: Error, sandboxId: string, port: number): ProxyError {
  if (err instanceof ConnectWindowError)
    return { status: 503, sandboxId, port, retryAfter: 1, message: err.message }
  if ((err as NodeJS.ErrnoException).code === 'ETIMEDOUT')
    return {
      status: 504,
      sandboxId,
      port,
      message: 'The sandbox is running but its server at this port accepted no connection in time',
    }
  return { status: 502, sandboxId, port, message: 'The sandbox is running but port is not open' }
}
