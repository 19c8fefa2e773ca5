// Requests to Warren's sandbox proxy with node:http, which (unlike undici's
// fetch) lets a test set the Host header: `{port}-{id}.{domain}` routing.
import { request } from 'node:http'

export interface ProxyResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  /** Parsed JSON, or undefined when the body is not JSON. */
  json: unknown
}

export interface ProxyRequest {
  method?: string
  path?: string
  /** `{port}-{id}.{domain}`; omit to route by headers only. */
  host?: string
  headers?: Record<string, string>
  body?: string | Buffer
  /** Another port of the fixture's (default: the edge proxy). */
  port?: number
}

export function proxyRequest(
  w: { ports: { proxy: number } },
  req: ProxyRequest = {},
): Promise<ProxyResponse> {
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: '127.0.0.1',
        port: req.port ?? w.ports.proxy,
        method: req.method ?? 'GET',
        path: req.path ?? '/',
        headers: { ...(req.host ? { host: req.host } : {}), ...req.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString()
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
        })
      },
    )
    r.on('error', reject)
    r.setTimeout(30_000, () => r.destroy(new Error('proxy request timed out')))
    r.end(req.body)
  })
}

/** The Host that routes to `port` of a sandbox through this fixture's proxy. */
export function sandboxHost(
  w: { ports: { proxy: number } },
  sandboxId: string,
  port: number,
): string {
  return `${port}-${sandboxId}.localhost:${w.ports.proxy}`
}
