import type { SandboxRecord } from '../sandboxes/record.js'
import type { Exit, NodeState, Settled } from './entries.js'
import { ExitWatcher } from './exit-watch.js'

/** Which container of a sandbox runs: a cold boot takes a new slot, a restore in place is new. */
function bootOf(record: SandboxRecord): string {
  return `${record.slotIndex}/${record.restoredAt ?? ''}`
}

/**
 * The node's sandboxes whose container died on their own: found by the exit
 * watcher, confirmed under the sandbox's lock (the same boot still running,
 * its first process still gone), marked on the entry until a kill removes
 * it, and announced to listeners (the heartbeats, at once).
 */
export class NodeExits {
  private readonly watcher: ExitWatcher
  private readonly listeners = new Set<(sandboxId: string) => void>()

  constructor(
    private readonly deps: NodeState,
    intervalMs: number,
  ) {
    this.watcher = new ExitWatcher(
      {
        running: () =>
          deps
            .all()
            .filter((e) => e.state === 'running' && !e.exited)
            .map((e) => ({ sandboxId: e.record.sandboxId, boot: bootOf(e.record) })),
        watchInit: (id) => deps.host.watchInit(id),
        confirmExit: (id, boot, watch) =>
          deps.locked(id, async () => {
            const e = deps.find(id)
            if (e?.state !== 'running' || e.exited || bootOf(e.record) !== boot) return
            if (watch.alive()) return
            this.mark(e, watch.exit())
          }),
      },
      intervalMs,
      deps.log,
    )
  }

  start(): void {
    this.watcher.start()
  }

  stop(): void {
    this.watcher.stop()
  }

  /** One look at every running sandbox now (tests; the watcher does it every interval). */
  tick(): void {
    this.watcher.tick()
  }

  onExit(fn: (sandboxId: string) => void): void {
    this.listeners.add(fn)
  }

  /** Sandboxes whose container exited, until they are killed. */
  list(): Array<{ sandboxId: string } & Exit> {
    return this.deps
      .all()
      .flatMap((e) => (e.exited ? [{ sandboxId: e.record.sandboxId, ...e.exited }] : []))
  }

  of(sandboxId: string): Exit | undefined {
    return this.deps.find(sandboxId)?.exited
  }

  private mark(entry: Settled, exit: { detail: string; oom: boolean }): void {
    const sandboxId = entry.record.sandboxId
    entry.exited = { at: new Date().toISOString(), ...exit }
    this.deps.log.warn({ sandboxId, ...exit }, 'sandbox container exited')
    for (const fn of this.listeners) fn(sandboxId)
  }
}
