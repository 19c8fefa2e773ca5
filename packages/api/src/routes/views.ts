import type { Sandbox } from '../store/sandboxes.js'

/** Response shapes of the E2B API (`Sandbox`, `SandboxDetail`, `ListedSandbox`). */

export interface ViewContext {
  domain: string
}

const iso = (ms: number) => new Date(ms).toISOString()

/** Visible state: transitional states read as what they are becoming. */
function publicState(s: Sandbox): 'running' | 'paused' {
  return s.state === 'paused' || s.state === 'pausing' ? 'paused' : 'running'
}

export function sandboxView(s: Sandbox, ctx: ViewContext) {
  return {
    templateID: s.templateId,
    sandboxID: s.sandboxId,
    clientID: s.nodeId,
    envdVersion: s.envdVersion,
    ...(s.envdAccessToken ? { envdAccessToken: s.envdAccessToken } : {}),
    trafficAccessToken: s.trafficAccessToken,
    domain: ctx.domain,
    // Warren extension: how the last resume went (memory: processes continued; files: fresh boot).
    ...(s.resumedFrom ? { resumedFrom: s.resumedFrom } : {}),
  }
}

export function listedView(s: Sandbox) {
  return {
    templateID: s.templateId,
    sandboxID: s.sandboxId,
    clientID: s.nodeId,
    startedAt: iso(s.startedAt),
    endAt: iso(s.endAt),
    cpuCount: s.cpuCount,
    memoryMB: s.memoryMb,
    diskSizeMB: s.diskSizeMb,
    metadata: s.metadata,
    state: publicState(s),
    envdVersion: s.envdVersion,
    volumeMounts: s.volumeMounts.map((m) => ({ name: m.name, path: m.path })),
  }
}

export function detailView(s: Sandbox, ctx: ViewContext) {
  return {
    ...listedView(s),
    ...(s.envdAccessToken ? { envdAccessToken: s.envdAccessToken } : {}),
    domain: ctx.domain,
    allowInternetAccess: s.allowInternetAccess,
    lifecycle: {
      onTimeout: s.lifecycle.onTimeout,
      autoResume: s.lifecycle.autoResume,
      // Warren extension: traffic keepalive.
      keepalive: { traffic: { enabled: s.lifecycle.keepaliveTraffic } },
    },
    network: s.network,
    // Warren extensions: the snapshot kind while paused, how the last resume went.
    ...(s.pausedAt ? { pausedAt: iso(s.pausedAt), pausedKind: s.pausedKind } : {}),
    ...(s.resumedFrom ? { resumedFrom: s.resumedFrom } : {}),
  }
}
