import { type Cidr4, cidrSize, intToIpv4, parseCidr4, WarrenError } from '@warren/shared'

/** One sandbox's addresses: a /30 with the host end at .1 and the sandbox at .2. */
export interface AddressSlot {
  readonly index: number
  readonly hostIp: string
  readonly sandboxIp: string
}

/**
 * Hands out /30 slots of the configured pool. Slot 0 is never used, so the
 * pool's network address never names a sandbox. Acquire and release are
 * synchronous, so two concurrent creates can never get the same slot.
 */
export class AddressPool {
  readonly cidr: Cidr4
  private readonly used = new Set<number>()
  private readonly slots: number
  private next = 1

  constructor(pool: string) {
    this.cidr = parseCidr4(pool)
    if (this.cidr.bits > 29) {
      throw new WarrenError('invalid_argument', `address pool ${pool} is too small (at most /29)`)
    }
    this.slots = cidrSize(this.cidr) / 4
  }

  get free(): number {
    return this.slots - 1 - this.used.size
  }

  slot(index: number): AddressSlot {
    const base = this.cidr.network + index * 4
    return { index, hostIp: intToIpv4(base + 1), sandboxIp: intToIpv4(base + 2) }
  }

  acquire(): AddressSlot {
    for (let i = 0; i < this.slots - 1; i++) {
      const index = ((this.next - 1 + i) % (this.slots - 1)) + 1
      if (!this.used.has(index)) {
        this.used.add(index)
        // Round-robin: a just-released address is not reused at once, so late
        // packets for a killed sandbox do not reach its successor.
        this.next = (index % (this.slots - 1)) + 1
        return this.slot(index)
      }
    }
    throw new WarrenError('capacity_exhausted', 'no free sandbox addresses on this node')
  }

  /** Marks a slot found on the host (an adopted sandbox) as taken. */
  claim(index: number): AddressSlot {
    if (index < 1 || index >= this.slots) {
      throw new WarrenError('invalid_argument', `address slot ${index} is outside the pool`)
    }
    this.used.add(index)
    return this.slot(index)
  }

  release(index: number): void {
    this.used.delete(index)
  }
}
