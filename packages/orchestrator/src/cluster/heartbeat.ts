import type { Client, Transport } from '@connectrpc/connect'
import { createWarrenClient, type Logger } from '@warren/shared'
import { NodeService } from '@warren/shared/gen/warren/api/v1/nodes_pb'
import type { NodeStatusInit } from './status.js'

export interface Heartbeats {
  /** Sends a heartbeat now (after the one in flight, if any): a sandbox exited. */
  kick(): void
  stop(): Promise<void>
}

/**
 * The node's heartbeats to the control plane: its status every `intervalMs`,
 * one call at a time, and at once when `kick`ed. A failed call moves on to
 * the next URL (API replicas behind their own addresses) and is logged once
 * per outage. When the node process dies the heartbeats stop: the control
 * plane marks the node unhealthy, then, after its grace period, lost.
 */
export function startHeartbeats(opts: {
  transports: Transport[]
  status: () => NodeStatusInit
  intervalMs: number
  log: Logger
}): Heartbeats {
  const clients: Array<Client<typeof NodeService>> = opts.transports.map((t) =>
    createWarrenClient(NodeService, t),
  )
  let next = 0
  let timer: NodeJS.Timeout | undefined
  let inflight: Promise<void> | undefined
  let again = false
  let stopped = false
  let failing = false

  const beat = async () => {
    const client = clients[next % clients.length]!
    try {
      const res = await client.heartbeat({ status: opts.status() })
      if (failing) opts.log.info({ schedulable: res.schedulable }, 'heartbeats reach the API again')
      failing = false
    } catch (err) {
      if (!failing) opts.log.warn({ err }, 'heartbeat failed; retrying')
      failing = true
      next++
    }
  }
  const send = () => {
    if (stopped) return
    if (inflight) {
      again = true
      return
    }
    clearTimeout(timer)
    inflight = beat().finally(() => {
      inflight = undefined
      if (stopped) return
      if (again) {
        again = false
        send()
      } else timer = setTimeout(send, opts.intervalMs).unref()
    })
  }
  send()
  return {
    kick: send,
    async stop() {
      stopped = true
      clearTimeout(timer)
      await inflight
    },
  }
}
