import { request } from 'node:http'
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

/**
 * Hands envd its per-sandbox settings through its orchestrator-only route.
 * On a connection of its own (no keep-alive pool): a sandbox's address is
 * reused by a later one, and a gVisor sandbox that is killed closes nothing
 * towards the host, so a pooled connection to the old one would be handed to
 * the new one's /init and reset.
 */
export async function initEnvd(
  host: string,
  port: number,
  init: EnvdInit,
  /** The token envd holds already (a restored envd's: its source's). */
  currentToken?: string,
): Promise<void> {
  const body = JSON.stringify({ ...init, timestamp: new Date().toISOString() })
  const { status, text } = await new Promise<{ status: number; text: string }>(
    (resolve, reject) => {
      const req = request(
        {
          host,
          port,
          path: '/init',
          method: 'POST',
          agent: false,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            // The host closes the connection after the answer, not envd: a
            // connection gVisor closed first stays in TIME_WAIT, which its
            // checkpoint refuses (see envd's checkpoint.ts).
            connection: 'keep-alive',
            ...(currentToken ? { 'x-access-token': currentToken } : {}),
          },
          signal: AbortSignal.timeout(10_000),
        },
        (res) => {
          let data = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => {
            if (data.length < 500) data += chunk
          })
          res.on('end', () => {
            req.destroy()
            resolve({ status: res.statusCode ?? 0, text: data })
          })
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end(body)
    },
  )
  if (status < 200 || status > 299) {
    throw new WarrenError('internal', `envd /init answered ${status}: ${text.slice(0, 500)}`)
  }
}
