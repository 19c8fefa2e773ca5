import { LRUCache } from 'lru-cache'
import type {
  ConnectSlot,
  ConnectWindowHandle,
  ConnectWindowOptions,
} from '../proxy/connect-window.js'
import type { ProxyError } from '../proxy/errors.js'
import type { Resolution } from '../proxy/forward.js'
import type { Handoff, NodeResolver, RequestHead } from '../proxy/handoff.js'
import { ENVD_PORT } from '../proxy/host.js'
import { isInitPath } from '../proxy/init-route.js'
import { firstHeader } from '../proxy/request.js'
import { type NodeVerdict, sandboxPortTarget } from '../proxy/sandbox-port.js'
import { TRAFFIC_TOKEN_HEADER } from '../proxy/tokens.js'
import type { Channel } from './channel.js'

/** A local node's verdict as it crosses the channel: its window by id. */
export type WireVerdict =
  | { error: ProxyError }
  | {
      route: {
        host: string
        tls: boolean
        maskHost?: string | undefined
        window: { id: number; opts: ConnectWindowOptions }
      }
    }

/** A caller that is not an edge, and the traffic token it brought. */
export interface DirectCaller {
  trafficToken: string | undefined
}

/** Verdicts a worker keeps (sandbox, port, client address); windows it dials through. */
const MAX_VERDICTS = 10_000
const MAX_WINDOWS = 8192

/**
 * A worker's way to a node that lives in its primary (an edge worker's to
 * the all-in-one's own node, a node proxy worker's to its node). The node's
 * verdict on a sandbox port for a client address (and, for a direct caller,
 * the traffic token it brought) is asked of the primary once and kept until
 * the node says the sandbox changed (state, address, exit, policy, windows:
 * the primary passes every such change on at once, see NodeHost), so a
 * request costs no round trip; the worker then connects itself. New
 * connections still take their place in the primary's connect window of
 * the port, so there is one window however many workers dial.
 */
export class RemoteNode {
  private readonly verdicts = new LRUCache<string, NodeVerdict>({ max: MAX_VERDICTS })
  private readonly bySandbox = new Map<string, Set<string>>()
  private readonly windows = new LRUCache<number, RemoteConnectWindow>({ max: MAX_WINDOWS })
  /** Moves with every change: a verdict asked before one is not kept. */
  private epoch = 0
  private readonly listeners = new Set<(sandboxId: string) => void>()

  constructor(
    private readonly primary: Channel,
    private readonly nodeUrl: string,
  ) {}

  /** The node says this sandbox's verdicts may have changed. */
  changed(sandboxId: string): void {
    this.epoch++
    for (const fn of this.listeners) fn(sandboxId)
    const keys = this.bySandbox.get(sandboxId)
    if (!keys) return
    this.bySandbox.delete(sandboxId)
    for (const k of keys) this.verdicts.delete(k)
  }

  /** Told of every sandbox whose verdicts may have changed (as LocalNode.onChange). */
  onChange(fn: (sandboxId: string) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** For an edge's traffic (the edge checked the traffic token). */
  readonly resolve: NodeResolver = (req, h) => this.resolveFor(req, h, undefined)

  /** For a caller that is not an edge: the node judges the traffic token it brings. */
  readonly resolveDirect: NodeResolver = (req, h) =>
    this.resolveFor(req, h, { trafficToken: firstHeader(req, TRAFFIC_TOKEN_HEADER) })

  /** At once from a kept verdict; otherwise after asking the primary. */
  private resolveFor(
    req: RequestHead,
    h: Handoff,
    direct: DirectCaller | undefined,
  ): Resolution | Promise<Resolution> {
    if (h.port === ENVD_PORT && isInitPath(req.url)) {
      return { error: { status: 404, message: 'not found' } }
    }
    const key = `${h.sandboxId}\u0000${h.port}\u0000${h.clientIp}${direct ? `\u0000d\u0000${direct.trafficToken ?? ''}` : ''}`
    const kept = this.verdicts.get(key)
    return kept ? resolution(kept, h) : this.ask(key, h, direct)
  }

  private async ask(
    key: string,
    h: Handoff,
    direct: DirectCaller | undefined,
  ): Promise<Resolution> {
    const asked = this.epoch
    const verdict = this.fromWire(
      h.sandboxId,
      h.port,
      await this.primary.call<WireVerdict>(
        'nodeVerdict',
        this.nodeUrl,
        h.sandboxId,
        h.port,
        h.clientIp,
        direct,
      ),
    )
    if (asked === this.epoch) this.keep(h.sandboxId, key, verdict)
    return resolution(verdict, h)
  }

  private keep(sandboxId: string, key: string, verdict: NodeVerdict): void {
    this.verdicts.set(key, verdict)
    let keys = this.bySandbox.get(sandboxId)
    if (!keys) {
      keys = new Set()
      this.bySandbox.set(sandboxId, keys)
    }
    keys.add(key)
    // The index follows the cache's evictions loosely: bounded by clearing.
    if (this.bySandbox.size > MAX_VERDICTS) this.bySandbox.clear()
  }

  private fromWire(sandboxId: string, port: number, v: WireVerdict): NodeVerdict {
    if ('error' in v) return v
    const { id, opts } = v.route.window
    let window = this.windows.get(id)
    if (!window) {
      window = new RemoteConnectWindow(id, opts, this.primary, this.nodeUrl, sandboxId, port)
      this.windows.set(id, window)
    }
    return {
      route: {
        host: v.route.host,
        tls: v.route.tls,
        ...(v.route.maskHost ? { maskHost: v.route.maskHost } : {}),
        window,
      },
    }
  }
}

function resolution(verdict: NodeVerdict, h: Handoff): Resolution {
  return 'error' in verdict ? verdict : { target: sandboxPortTarget(verdict.route, h) }
}

/** The primary's connect window of a sandbox port, as a worker dials through it. */
class RemoteConnectWindow implements ConnectWindowHandle {
  constructor(
    readonly id: number,
    readonly opts: ConnectWindowOptions,
    private readonly primary: Channel,
    private readonly nodeUrl: string,
    private readonly sandboxId: string,
    private readonly port: number,
  ) {}

  async acquire(retry = false): Promise<ConnectSlot> {
    const slotId = await this.primary.call<number>(
      'windowAcquire',
      this.nodeUrl,
      this.sandboxId,
      this.port,
      retry,
    )
    let ended = false
    const end = (how: 'answered' | 'dropped' | 'free') => {
      if (ended) return
      ended = true
      this.primary.note('slotEnd', slotId, how)
    }
    return {
      answered: () => end('answered'),
      dropped: () => end('dropped'),
      free: () => end('free'),
    }
  }
}
