import { WarrenError } from '../errors.js'
import type { ConnectSlot } from '../proxy/connect-window.js'
import type { LocalNode } from '../proxy/sandbox-port.js'
import type { Channel } from './channel.js'
import type { DirectCaller, WireVerdict } from './remote-node.js'

type SlotEnd = 'answered' | 'dropped' | 'free'

/**
 * The primary's side of its workers' RemoteNodes: it answers their verdict
 * asks from the nodes in its process, tells each worker of every sandbox
 * whose verdicts may have changed, and holds the places workers take in
 * those nodes' connect windows, so there is one window per sandbox port
 * however many workers dial. A place whose worker is gone is freed.
 */
export class NodeHost {
  private readonly slots = new Map<number, { slot: ConnectSlot; worker: Channel }>()
  private nextSlot = 0

  constructor(private readonly nodes: ReadonlyMap<string, LocalNode>) {}

  /** Answers `worker`'s asks; the returned function ends that when the worker is gone. */
  serve(worker: Channel): () => void {
    let gone = false
    worker
      .handle(
        'nodeVerdict',
        (url: string, id: string, port: number, ip: string, direct?: DirectCaller) =>
          this.verdict(url, id, port, ip, direct),
      )
      .handle('windowAcquire', async (url: string, id: string, port: number, retry: boolean) => {
        const slot = await this.node(url).window(id, port).acquire(retry)
        if (gone) {
          slot.free()
          throw new WarrenError('unavailable', 'the worker is gone')
        }
        const slotId = ++this.nextSlot
        this.slots.set(slotId, { slot, worker })
        return slotId
      })
      .handle('slotEnd', (slotId: number, how: SlotEnd) => this.end(slotId, how))
    const unsubscribe = [...this.nodes].map(([url, node]) =>
      node.onChange((id) => worker.note('nodeChanged', url, id)),
    )
    return () => {
      gone = true
      for (const u of unsubscribe) u()
      for (const [slotId, s] of this.slots) if (s.worker === worker) this.end(slotId, 'free')
    }
  }

  private node(url: string): LocalNode {
    const node = this.nodes.get(url)
    if (!node) throw new WarrenError('not_found', `no local node at ${url}`)
    return node
  }

  private verdict(
    url: string,
    sandboxId: string,
    port: number,
    clientIp: string,
    direct: DirectCaller | undefined,
  ): WireVerdict {
    const v = this.node(url).verdict(sandboxId, port, clientIp, direct)
    if ('error' in v) return v
    const { window, ...route } = v.route
    return { route: { ...route, window: { id: window.id, opts: window.opts } } }
  }

  private end(slotId: number, how: SlotEnd): void {
    const s = this.slots.get(slotId)
    if (!s) return
    this.slots.delete(slotId)
    s.slot[how]()
  }
}
