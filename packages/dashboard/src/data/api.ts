// The dashboard's only way to the server: Warren's REST API, same origin,
// with the key in the X-API-Key header — never in a URL, where it would end
// up in logs and history.

export interface Me {
  team: { id: string; name: string; maxConcurrent: number; maxLifetimeS: number }
  keyId: string
  admin: boolean
}

export interface ListedSandbox {
  sandboxID: string
  templateID: string
  clientID: string
  startedAt: string
  endAt: string
  cpuCount: number
  memoryMB: number
  metadata: Record<string, string>
  state: 'running' | 'paused'
}

export interface SandboxDetail extends ListedSandbox {
  lifecycle: { onTimeout: string; autoResume: boolean }
  network: Record<string, unknown>
  allowInternetAccess: boolean | null
}

export interface MetricSample {
  timestampUnix: number
  cpuUsedPct: number
  cpuCount: number
  memUsed: number
  memTotal: number
}

export interface LogEntry {
  timestamp: string
  level: string
  message: string
}

export interface Template {
  templateID: string
  buildID: string
  aliases: string[]
  cpuCount: number
  memoryMB: number
  public: boolean
  buildStatus: string
  buildCount: number
  updatedAt: string
}

export interface Build {
  buildID: string
  status: string
  createdAt: string
  finishedAt?: string
}

export interface ApiKey {
  id: string
  name: string
  mask: string
  admin: boolean
  createdAt: string
  revokedAt: string | null
}

export interface TeamSummary {
  id: string
  name: string
  maxConcurrent: number
  maxLifetimeS: number
  maxMemoryMb: number | null
  maxTemplates: number | null
  /** The isolation its new sandboxes must have; null: any. */
  requiredIsolation: 'runc' | 'gvisor' | null
  activeSandboxes: number
  activeMemoryMb: number
  activeKeys: number
}

export interface NodeSummary {
  nodeId: string
  health: string
  schedulable: string
  cpuCount: number
  cpuAllocated: number
  memoryMbTotal: number
  memoryMbFree: number
  templates: string[]
  version: string
}

/** An answer other than 2xx: Warren's `{code, message}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

export type Api = ReturnType<typeof createApi>

export function createApi(key: string, base = '') {
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(base + path, {
      method,
      headers: {
        'x-api-key': key,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      cache: 'no-store',
    })
    if (!res.ok) {
      const err = (await res.json().catch(() => ({}))) as { message?: string }
      throw new ApiError(res.status, err.message ?? res.statusText)
    }
    return (res.status === 204 ? undefined : await res.json()) as T
  }
  const id = encodeURIComponent
  return {
    me: () => call<Me>('GET', '/me'),
    sandboxes: () => call<ListedSandbox[]>('GET', '/v2/sandboxes?state=running,paused&limit=1000'),
    sandbox: (s: string) => call<SandboxDetail>('GET', `/sandboxes/${id(s)}`),
    metrics: (s: string) => call<MetricSample[]>('GET', `/sandboxes/${id(s)}/metrics`),
    logs: (s: string) =>
      call<{ logs: LogEntry[] }>('GET', `/v2/sandboxes/${id(s)}/logs?direction=backward&limit=50`),
    pause: (s: string) => call<void>('POST', `/sandboxes/${id(s)}/pause`),
    resume: (s: string) => call<void>('POST', `/sandboxes/${id(s)}/resume`, {}),
    setTimeout: (s: string, timeout: number) =>
      call<void>('POST', `/sandboxes/${id(s)}/timeout`, { timeout }),
    kill: (s: string) => call<void>('DELETE', `/sandboxes/${id(s)}`),
    templates: () => call<Template[]>('GET', '/templates'),
    template: (t: string) => call<{ builds: Build[] }>('GET', `/templates/${id(t)}`),
    keys: () => call<ApiKey[]>('GET', '/api-keys'),
    createKey: (name: string) => call<ApiKey & { key: string }>('POST', '/api-keys', { name }),
    revokeKey: (k: string) => call<void>('DELETE', `/api-keys/${id(k)}`),
    teams: () => call<TeamSummary[]>('GET', '/admin/teams'),
    createTeam: (name: string) => call<TeamSummary>('POST', '/admin/teams', { name }),
    setLimits: (
      t: string,
      limits: {
        maxConcurrent?: number
        maxLifetimeS?: number
        maxMemoryMb?: number | null
        maxTemplates?: number | null
        requiredIsolation?: 'runc' | 'gvisor' | null
      },
    ) => call<TeamSummary>('PATCH', `/admin/teams/${id(t)}`, limits),
    nodes: () => call<NodeSummary[]>('GET', '/admin/nodes'),
  }
}
