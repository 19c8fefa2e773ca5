import { isSandboxIdLike } from '../ids.js'

/** The envd port: SDK traffic; its error statuses are part of the SDK contract. */
export const ENVD_PORT = 49983

export interface SandboxAddress {
  sandboxId: string
  port: number
}

const HOST_LABEL = /^(\d{1,5})-([a-z0-9]{20})$/

/**
 * Where a request is meant to go: the E2b-Sandbox-Id/-Port headers (how the
 * SDK reaches envd through E2B_SANDBOX_URL) or the first label of the Host,
 * `{port}-{id}.{domain}`. Undefined when the request names no sandbox. A
 * header may name any id-shaped id (an unknown one is "not found" later, as
 * at the API); a host label carries ids as Warren issues them.
 */
export function sandboxAddressOf(headers: {
  host?: string | undefined
  sandboxId?: string | undefined
  sandboxPort?: string | undefined
}): SandboxAddress | undefined {
  if (headers.sandboxId) {
    const port = headers.sandboxPort === undefined ? ENVD_PORT : parsePort(headers.sandboxPort)
    if (port === undefined || !isSandboxIdLike(headers.sandboxId)) return undefined
    return { sandboxId: headers.sandboxId, port }
  }
  const label = headers.host?.split('.')[0]?.toLowerCase()
  const m = label ? HOST_LABEL.exec(label) : null
  if (!m) return undefined
  const port = parsePort(m[1]!)
  return port === undefined ? undefined : { sandboxId: m[2]!, port }
}

function parsePort(value: string): number | undefined {
  if (!/^\d{1,5}$/.test(value)) return undefined
  const port = Number(value)
  return port >= 1 && port <= 65535 ? port : undefined
}
