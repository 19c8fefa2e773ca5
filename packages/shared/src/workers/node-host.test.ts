import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { CONNECT_WINDOW_DEFAULTS, ConnectWindow } from '../proxy/connect-window.js'
import type { LocalNode } from '../proxy/sandbox-port.js'
import { channelPair } from './channel-pair.js'
import { NodeHost } from './node-host.js'
import { RemoteNode } from './remote-node.js'

const handoff = {
  sandboxId: 's1',
  port: 8000,
  clientIp: '127.0.0.1',
  forwardedFor: '127.0.0.1',
  forwardedHost: 'h',
  forwardedProto: 'http' as const,
}
const head = (headers: Record<string, string> = {}) =>
  ({ url: '/', headers }) as unknown as IncomingMessage

/** A node whose one sandbox wants the traffic token `t` of direct callers, and counts asks. */
function fakeNode() {
  const window = new ConnectWindow({ ...CONNECT_WINDOW_DEFAULTS, initial: 1, max: 1 })
  const listeners = new Set<(id: string) => void>()
  const asked: string[] = []
  let open = true
  const node: LocalNode = {
    resolve: async () => ({ error: { status: 500, message: 'unused' } }),
    verdict: (id, _port, _ip, direct) => {
      asked.push(direct ? `direct ${direct.trafficToken}` : 'edge')
      if (!open) return { error: { status: 502, sandboxId: id, message: 'The sandbox is paused' } }
      if (direct && direct.trafficToken !== 't')
        return { error: { status: 403, sandboxId: id, message: 'token' } }
      return { route: { host: '10.0.0.2', tls: false, window } }
    },
    window: () => window,
    onChange: (fn) => {
      listeners.add(fn)
      return () => listeners.delete(fn)
    },
  }
  const change = (open_: boolean) => {
    open = open_
    for (const l of listeners) l('s1')
  }
  return { node, window, asked, change }
}

describe('NodeHost and RemoteNode', () => {
  it("keep a verdict per caller (a direct caller's token too) until the node says the sandbox changed", async () => {
    const { node, asked, change } = fakeNode()
    const { worker, primary } = channelPair()
    new NodeHost(new Map([['n', node]])).serve(primary)
    const remote = new RemoteNode(worker, 'n')
    worker.handle('nodeChanged', (_url: string, id: string) => remote.changed(id))
    const status = async (r: ReturnType<RemoteNode['resolve']>) => {
      const v = await r
      return 'error' in v ? v.error.status : 200
    }
    expect(await status(remote.resolve(head(), handoff))).toBe(200)
    expect(await status(remote.resolve(head(), handoff))).toBe(200)
    expect(await status(remote.resolveDirect(head(), handoff))).toBe(403)
    const token = { 'e2b-traffic-access-token': 't' }
    expect(await status(remote.resolveDirect(head(token), handoff))).toBe(200)
    expect(await status(remote.resolveDirect(head(token), handoff))).toBe(200)
    expect(asked).toEqual(['edge', 'direct undefined', 'direct t'])
    change(false)
    await new Promise((r) => setTimeout(r, 10))
    expect(await status(remote.resolve(head(), handoff))).toBe(502)
    expect(await status(remote.resolveDirect(head(token), handoff))).toBe(502)
    expect(asked).toHaveLength(5)
  })

  it("hold one window for all workers, and free a gone worker's places", async () => {
    const { node, window } = fakeNode()
    const host = new NodeHost(new Map([['n', node]]))
    const a = channelPair()
    const b = channelPair()
    const goneA = host.serve(a.primary)
    host.serve(b.primary)
    const route = async (w: RemoteNode) => {
      const v = await w.resolve(head(), handoff)
      if ('error' in v) throw new Error(v.error.message)
      return v.target.connectWindow!
    }
    const held = await (await route(new RemoteNode(a.worker, 'n'))).acquire()
    expect(window.pending.inFlight).toBe(1)
    // The window of one is full: worker b waits until a's place is freed by a going away.
    const waiting = (await route(new RemoteNode(b.worker, 'n'))).acquire()
    await new Promise((r) => setTimeout(r, 10))
    expect(window.pending.waiting).toBe(1)
    goneA()
    const slot = await waiting
    expect(window.pending).toEqual({ inFlight: 1, waiting: 0 })
    slot.answered()
    held.free() // already freed with its worker: no effect
    await new Promise((r) => setTimeout(r, 10))
    expect(window.pending.inFlight).toBe(0)
  })
})
