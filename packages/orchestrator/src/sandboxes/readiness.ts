import { setTimeout as sleep } from 'node:timers/promises'
import { dialOnce, WarrenError } from '@warren/shared'

/**
 * Waits until something accepts TCP connections on host:port. The first
 * attempts come quickly (a sandbox's first process is usually up within tens
 * of milliseconds), then back off; `alive` lets a dead process end the wait.
 */
export async function waitForPort(
  host: string,
  port: number,
  opts: { timeoutMs: number; alive?: () => Promise<boolean> },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs
  let delay = 1
  for (let attempt = 0; ; attempt++) {
    const socket = await dialOnce(host, port, 1000).catch(() => undefined)
    if (socket) return void socket.destroy()
    if (Date.now() > deadline) {
      throw new WarrenError(
        'internal',
        `sandbox did not answer on port ${port} within ${opts.timeoutMs} ms`,
      )
    }
    if (attempt % 20 === 19 && opts.alive && !(await opts.alive())) {
      throw new WarrenError('internal', 'sandbox exited while starting')
    }
    await sleep(delay)
    delay = Math.min(delay * 2, 25)
  }
}

export interface EnvdInit {
  accessToken?: string
  envVars?: Record<string, string>
  defaultUser?: string
  defaultWorkdir?: string
}

/** Hands envd its per-sandbox settings through its orchestrator-only route. */
export async function initEnvd(
  host: string,
  port: number,
  init: EnvdInit,
  /** The token envd holds already (a restored envd's, its source's). */
  currentToken?: string,
): Promise<void> {
  const res = await fetch(`http://${host}:${port}/init`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(currentToken ? { 'x-access-token': currentToken } : {}),
    },
    body: JSON.stringify({ ...init, timestamp: new Date().toISOString() }),
    signal: AbortSignal.timeout(10_000),
  })
  if (!res.ok) {
    throw new WarrenError(
      'internal',
      `envd /init answered ${res.status}: ${(await res.text()).slice(0, 500)}`,
    )
  }
}
