import type { Logger } from '@warren/shared'
import type { InitWatch } from '../sandboxes/init-watch.js'

/** What the exit watcher needs of the node. */
export interface WatchedNode {
  /**
   * Running sandboxes not known to have exited, each with its boot (names
   * its current container: a cold boot gets a new slot, a gVisor restore in
   * place a new time).
   */
  running(): Array<{ sandboxId: string; boot: string }>
  /** Finds the first process of a sandbox's current container (one `runc state`). */
  watchInit(sandboxId: string): Promise<InitWatch>
  /**
   * Under the sandbox's lock: if the same boot still runs and its first
   * process is still gone, the sandbox is marked exited.
   */
  confirmExit(sandboxId: string, boot: string, watch: InitWatch): Promise<void>
}

interface Watched {
  boot: string
  watch?: InitWatch
  busy?: boolean
}

/** Containers looked up per tick: a node adopting hundreds spreads the `runc state` calls. */
const RESOLVES_PER_TICK = 4

/**
 * Notices a sandbox whose container died on its own (its first process
 * exited, or the kernel OOM-killed it): every `intervalMs`, one procfs read
 * per running sandbox. A death is confirmed under the sandbox's lock, so a
 * pause, kill or cold resume under way (which stop the container on purpose)
 * is never taken for one. Started after the node adopted its sandboxes,
 * stopped with the node; a node that dies stops watching, and the next
 * start adopts a container that died meanwhile as exited.
 */
export class ExitWatcher {
  private readonly watched = new Map<string, Watched>()
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly node: WatchedNode,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.intervalMs)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** One look at every running sandbox (also called by tests). */
  tick(): void {
    const running = this.node.running()
    const ids = new Set(running.map((r) => r.sandboxId))
    for (const id of this.watched.keys()) if (!ids.has(id)) this.watched.delete(id)
    let resolves = 0
    for (const { sandboxId, boot } of running) {
      const w = this.watched.get(sandboxId)
      if (!w || w.boot !== boot) {
        if (resolves++ >= RESOLVES_PER_TICK) continue
        this.resolve(sandboxId, boot)
        continue
      }
      if (!w.watch || w.busy || w.watch.alive()) continue
      w.busy = true
      const watch = w.watch
      void this.node
        .confirmExit(sandboxId, boot, watch)
        .catch((err) => this.log.warn({ err, sandboxId }, 'exit watch: confirming failed'))
        .finally(() => {
          w.busy = false
        })
    }
  }

  private resolve(sandboxId: string, boot: string): void {
    const entry: Watched = { boot, busy: true }
    this.watched.set(sandboxId, entry)
    this.node.watchInit(sandboxId).then(
      (watch) => {
        entry.watch = watch
        entry.busy = false
      },
      (err: unknown) => {
        // Looked up again at the next tick.
        if (this.watched.get(sandboxId) === entry) this.watched.delete(sandboxId)
        this.log.debug({ err, sandboxId }, 'exit watch: container not found yet')
      },
    )
  }
}
