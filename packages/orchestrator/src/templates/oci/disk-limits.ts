import { statfsSync } from 'node:fs'
import { WarrenError } from '@warren/shared'

/** What a pull may write: per layer, and how much free space the store's disk keeps. */
export interface DiskLimits {
  maxLayerBytes?: number
  /** Throws when the store's filesystem is down to its reserve. */
  checkFree?: () => void
}

/** How often (in bytes written) the disk's free space is looked at. */
const CHECK_EVERY = 64 * 2 ** 20
/** What an entry costs besides its contents: an inode and a block, about. */
const ENTRY_COST = 4096

export function diskLimits(opts: {
  into: string
  maxLayerBytes?: number | undefined
  minFreeBytes?: number | undefined
}): DiskLimits {
  const { into, minFreeBytes } = opts
  return {
    ...(opts.maxLayerBytes ? { maxLayerBytes: opts.maxLayerBytes } : {}),
    ...(minFreeBytes
      ? {
          checkFree: () => {
            const fs = statfsSync(into)
            const free = fs.bavail * fs.bsize
            if (free < minFreeBytes)
              throw new WarrenError(
                'capacity_exhausted',
                `the node's disk is down to its reserve (${mib(free)} MiB free, ${mib(minFreeBytes)} MiB kept): the image was not pulled`,
              )
          },
        }
      : {}),
  }
}

/**
 * Counts what one layer writes as it unpacks — every entry an inode and a
 * block, files their contents too — and stops it past the layer limit or
 * when the disk reaches its reserve: a hostile image (a small gzip of
 * terabytes of zeros, millions of empty files) cannot fill the host.
 */
export class DiskBudget {
  private used = 0
  private nextCheck = 0

  constructor(private readonly limits: DiskLimits = {}) {}

  entry(): void {
    this.charge(ENTRY_COST)
  }

  charge(bytes: number): void {
    this.used += bytes
    const max = this.limits.maxLayerBytes
    if (max !== undefined && this.used > max) {
      throw new WarrenError(
        'limit_exceeded',
        `it unpacks to more than ${mib(max)} MiB, the limit for one image layer`,
      )
    }
    if (this.used >= this.nextCheck) {
      this.nextCheck = this.used + CHECK_EVERY
      this.limits.checkFree?.()
    }
  }
}

const mib = (n: number) => Math.floor(n / 2 ** 20)
