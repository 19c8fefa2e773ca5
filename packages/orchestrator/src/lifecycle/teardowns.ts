import type { Logger } from '@warren/shared'
import pLimit from 'p-limit'
import type { SandboxRecord } from '../sandboxes/record.js'

/** Teardowns run at once: each unmounts, removes files and a namespace. */
export const TEARDOWN_CONCURRENCY = 2

/**
 * The teardowns of killed sandboxes still running in the background: a
 * bounded queue, so a burst of kills does not start hundreds of unmounts at
 * once. A sandbox in here is gone for callers, but its host objects (mounts
 * on its template's layers, its network slot's address, its directory) are
 * still held: the node keeps its id reserved and its build in use until the
 * teardown ends. One that fails is logged; its sandbox's mark stays on disk
 * and the next start removes what is left (see sandboxes/reconcile).
 */
export class Teardowns {
  private readonly limit = pLimit(TEARDOWN_CONCURRENCY)
  private readonly pending = new Map<string, { record: SandboxRecord; done: Promise<void> }>()

  /** `ended` is called after each teardown, whether it succeeded or failed. */
  constructor(
    private readonly log: Logger,
    private readonly ended: () => void = () => {},
  ) {}

  get size(): number {
    return this.pending.size
  }

  has(sandboxId: string): boolean {
    return this.pending.has(sandboxId)
  }

  /** The records of the sandboxes being torn down. */
  records(): SandboxRecord[] {
    return [...this.pending.values()].map((p) => p.record)
  }

  /** Queues `teardown` for a killed sandbox; its failure is logged, never thrown. */
  add(record: SandboxRecord, teardown: () => Promise<void>): void {
    const sandboxId = record.sandboxId
    const done = this.limit(teardown)
      .catch((err) => this.log.error({ err, sandboxId }, 'sandbox teardown failed'))
      .finally(() => {
        this.pending.delete(sandboxId)
        try {
          this.ended()
        } catch (err) {
          // What follows a teardown never fails the teardown's own promise.
          this.log.error({ err, sandboxId }, 'work after a sandbox teardown failed')
        }
      })
    this.pending.set(sandboxId, { record, done })
  }

  /** Resolves once every teardown queued so far has ended. */
  async settled(): Promise<void> {
    await Promise.all([...this.pending.values()].map((p) => p.done))
  }
}
