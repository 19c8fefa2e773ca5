import { type Logger, linkGsoTool } from '@warren/shared'
import { run } from '../exec.js'
import type { NetnsNames } from './netns.js'

/** The kernel's own IPv4 GSO/GRO size limit: raising to it changes nothing. */
const KERNEL_DEFAULT = 65536

/**
 * Raises the IPv4 GSO/GRO size limit of both ends of a sandbox's veth (BIG
 * TCP). TCP between the host's relays (edge, node proxy, egress proxy) and
 * the sandbox then moves through the kernel in packets of up to `size` bytes
 * instead of 64 KiB: fewer traversals of both stacks and nftables per byte,
 * which is most of what relaying a download costs the host (issue #14).
 * Packets that leave through a real NIC are still cut to its limits.
 * Best effort: without the tool or the kernel support (Linux 6.3+) links
 * keep 64 KiB, said once in the log. gVisor's sandboxes need 64 KiB: its
 * netstack reads the veth's frames whole, and packets past 64 KiB took a
 * 128 MiB download through the egress proxy from 96 to 5 MiB/s.
 */
export class LinkGso {
  private off = false

  constructor(
    private readonly size: number,
    private readonly log: Logger,
    private readonly tool = linkGsoTool(),
  ) {}

  /** The size both ends now have; undefined when they keep the kernel's. */
  async raise(names: NetnsNames): Promise<number | undefined> {
    if (this.off || this.size === KERNEL_DEFAULT) return undefined
    if (!this.tool) return void this.stop('link-gso is not built (packages/shared/native)')
    try {
      await this.set(this.tool, names, this.size)
      return this.size
    } catch (err) {
      this.stop(err instanceof Error ? err.message : String(err))
      return undefined
    }
  }

  /** Back to the kernel's 64 KiB on both ends (a gVisor sandbox's link); failing throws. */
  async lower(names: NetnsNames): Promise<void> {
    if (!this.tool) throw new Error('link-gso is not built (packages/shared/native)')
    await this.set(this.tool, names, KERNEL_DEFAULT)
  }

  private async set(tool: string, names: NetnsNames, size: number): Promise<void> {
    await Promise.all([
      run(tool, [names.hostIf, String(size)]),
      run(tool, ['-n', names.netns, 'eth0', String(size)]),
    ])
  }

  private stop(why: string): void {
    if (this.off) return
    this.off = true
    this.log.warn({ why }, 'sandbox links keep 64 KiB packets (WARREN_SANDBOX_GSO_MAX_SIZE)')
  }
}
