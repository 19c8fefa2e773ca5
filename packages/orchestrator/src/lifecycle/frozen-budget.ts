import type { NodeState } from './entries.js'
import { toFiles } from './entries.js'

/**
 * Keeps the memory held by frozen (paused with memory) sandboxes within the
 * node's budget by dropping the oldest ones to files-only snapshots. One pass
 * at a time, in the background of the pause that triggered it; each drop
 * takes the sandbox's lock and checks it is still frozen.
 */
export class FrozenBudget {
  private pass: Promise<void> = Promise.resolve()

  constructor(
    private readonly node: NodeState,
    private readonly budgetBytes: number,
  ) {}

  enforce(): void {
    this.pass = this.pass.then(() => this.once())
  }

  /** Resolves when the passes asked for so far are done. */
  settled(): Promise<void> {
    return this.pass
  }

  private async once(): Promise<void> {
    const { node } = this
    const frozen = node
      .all()
      .filter((e) => e.state === 'paused' && e.record.pausedKind === 'memory')
      .sort((a, b) => (a.record.pausedAt ?? '').localeCompare(b.record.pausedAt ?? ''))
    let total = frozen.reduce((n, e) => n + (e.frozenBytes ?? 0), 0)
    for (const e of frozen) {
      if (total <= this.budgetBytes) break
      const id = e.record.sandboxId
      await node
        .locked(id, async () => {
          const now = node.find(id)
          if (now?.state !== 'paused' || now.record.pausedKind !== 'memory') return
          await toFiles(node, now, now.record.pausedAt ?? new Date().toISOString(), true)
          node.log.info({ sandboxId: id }, 'frozen sandbox dropped to files (node memory policy)')
        })
        .catch((err) =>
          node.log.error({ err, sandboxId: id }, 'could not drop a frozen sandbox to files'),
        )
      total -= e.frozenBytes ?? 0
    }
  }
}
