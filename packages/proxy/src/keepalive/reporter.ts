import type { Logger } from '@warren/shared'
import type { ProxyClient } from '../catalog/route-catalog.js'

/**
 * Reports traffic of keepalive sandboxes to the API with at most one call per
 * sandbox per interval, however much traffic flows: the first activity is
 * reported at once, activity during the interval is folded into one trailing
 * call at its end. Calls are fire-and-forget; a request never waits for them.
 */
export class KeepaliveReporter {
  private readonly windows = new Map<string, { timer: NodeJS.Timeout; dirty: boolean }>()

  constructor(
    private readonly client: ProxyClient,
    private readonly intervalMs: number,
    private readonly log: Logger,
    /** Told of each report sent (the per-sandbox metric). */
    private readonly onReport: (sandboxId: string) => void = () => {},
  ) {}

  touch(sandboxId: string): void {
    const window = this.windows.get(sandboxId)
    if (window) {
      window.dirty = true
      return
    }
    this.send(sandboxId)
    this.open(sandboxId)
  }

  stop(): void {
    for (const w of this.windows.values()) clearTimeout(w.timer)
    this.windows.clear()
  }

  private open(sandboxId: string): void {
    const timer = setTimeout(() => {
      const w = this.windows.get(sandboxId)
      this.windows.delete(sandboxId)
      if (w?.dirty) {
        this.send(sandboxId)
        this.open(sandboxId)
      }
    }, this.intervalMs)
    timer.unref()
    this.windows.set(sandboxId, { timer, dirty: false })
  }

  private send(sandboxId: string): void {
    this.onReport(sandboxId)
    this.client
      .keepAliveSandbox({ sandboxId })
      .catch((err: unknown) => this.log.warn({ err, sandboxId }, 'keepalive report failed'))
  }
}
