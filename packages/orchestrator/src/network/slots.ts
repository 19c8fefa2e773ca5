import type { Logger } from '@warren/shared'
import type { AddressPool, AddressSlot } from './address-pool.js'
import type { LinkGso } from './link-gso.js'
import { createNetns, destroyNetns, type NetnsNames, netnsNames } from './netns.js'

/** A sandbox's network: its addresses and the host objects that carry them. */
export interface NetworkSlot extends AddressSlot, NetnsNames {
  /** The veth's raised IPv4 GSO size (LinkGso); undefined: the kernel's 64 KiB. */
  gsoMaxSize?: number
}

/**
 * Network slots for sandboxes. Building a namespace costs several tool runs,
 * so a few are kept ready (bounded, filled one at a time in the background)
 * and a create only takes one. Released slots are destroyed, never reused:
 * a new sandbox never inherits conntrack state or rules.
 */
export class NetworkSlots {
  private readonly warm: NetworkSlot[] = []
  private filling: Promise<void> | undefined
  private stopped = false

  constructor(
    private readonly opts: {
      prefix: string
      pool: AddressPool
      target: number
      baseTable: (slot: AddressSlot) => string
      /** Raises the packet size of each new slot's veth; undefined: the kernel's 64 KiB. */
      linkGso?: LinkGso
      log: Logger
    },
  ) {}

  get ready(): number {
    return this.warm.length
  }

  async acquire(): Promise<NetworkSlot> {
    const slot = this.warm.shift()
    this.fill()
    return slot ?? (await this.build())
  }

  /** A slot found on the host that belongs to an adopted sandbox. */
  adopt(index: number): NetworkSlot {
    const addr = this.opts.pool.claim(index)
    return { ...addr, ...netnsNames(this.opts.prefix, index) }
  }

  async release(slot: NetworkSlot): Promise<void> {
    try {
      await destroyNetns(slot)
    } finally {
      this.opts.pool.release(slot.index)
    }
  }

  /** Starts (at most one) background refill up to the target. */
  fill(): void {
    if (this.filling || this.stopped || this.warm.length >= this.opts.target) return
    this.filling = (async () => {
      while (!this.stopped && this.warm.length < this.opts.target) {
        try {
          this.warm.push(await this.build())
        } catch (err) {
          // Capacity or host trouble: creates still build on demand and report it.
          this.opts.log.warn({ err }, 'could not prepare a network slot')
          break
        }
      }
    })().finally(() => {
      this.filling = undefined
    })
  }

  /** Stops refilling and destroys the ready slots (sandboxes keep theirs). */
  async stop(): Promise<void> {
    this.stopped = true
    await this.filling
    await Promise.allSettled(this.warm.splice(0).map((s) => this.release(s)))
  }

  private async build(): Promise<NetworkSlot> {
    const addr = this.opts.pool.acquire()
    const slot: NetworkSlot = { ...addr, ...netnsNames(this.opts.prefix, addr.index) }
    try {
      await createNetns(slot, addr, this.opts.baseTable(addr))
      const gso = await this.opts.linkGso?.raise(slot)
      if (gso) slot.gsoMaxSize = gso
      return slot
    } catch (err) {
      await this.release(slot).catch(() => {})
      throw err
    }
  }
}
