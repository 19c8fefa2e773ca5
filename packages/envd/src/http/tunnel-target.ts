import { isIP } from 'node:net'

export type TunnelTarget = { ok: true; host: string; port: number } | { ok: false; message: string }

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?)*\.?$/

/** `?host=<h>&port=<p>` of GET /tunnel; host defaults to localhost (inside the sandbox). */
export function parseTunnelTarget(params: URLSearchParams): TunnelTarget {
  const rawPort = params.get('port')
  if (rawPort === null || rawPort === '')
    return { ok: false, message: "query parameter 'port' is required" }
  if (!/^\d{1,5}$/.test(rawPort)) return { ok: false, message: `invalid port '${rawPort}'` }
  const port = Number(rawPort)
  if (port < 1 || port > 65535)
    return { ok: false, message: `port ${port} is out of range 1-65535` }
  let host = params.get('host') ?? 'localhost'
  if (host === '') host = 'localhost'
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  if (isIP(host) === 0 && !HOSTNAME.test(host))
    return { ok: false, message: `invalid host '${host}'` }
  return { ok: true, host, port }
}
