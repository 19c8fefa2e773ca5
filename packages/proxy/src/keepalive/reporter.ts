import type { Logger } from '@warren/shared'
import type { ProxyClient } from '../catalog/route-catalog.js'

/**
 * Reports traffic of keepalive sandboxes with at most one report per
 * sandbox per interval, however much traffic flows: the first activity is
 * reported at once, activity during the interval is folded into one trailing
 * report at its end. Reports are fire-and-forget; a request never waits for
 * them. The primary's reporter calls the API; a proxy worker's tells the
 * primary's, whose windows hold across all workers.
 */
export class KeepaliveReporter {
  private readonly windows = new Map<string, { timer: NodeJS.Timeout; dirty: boolean }>()

  constructor(
    private readonly intervalMs: number,
    private readonly report: (sandboxId: string) => void,
  ) {}

  touch(sandboxId: string): void {
    const window = this.windows.get(sandboxId)
    if (window) {
      window.dirty = true
      return
    }
    this.report(sandboxId)
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
        this.report(sandboxId)
        this.open(sandboxId)
      }
    }, this.intervalMs)
    timer.unref()
    this.windows.set(sandboxId, { timer, dirty: false })
  }
}

/** A report as the API's `KeepAliveSandbox` call; `onReport` is told of each (the per-sandbox metric). */
export function reportKeepalive(
  client: ProxyClient,
  log: Logger,
  onReport: (sandboxId: string) => void = () => {},
): (sandboxId: string) => void {
  return (sandboxId) => {
    onReport(sandboxId)
    client
      .keepAliveSandbox({ sandboxId })
      .catch((err: unknown) => log.warn({ err, sandboxId }, 'keepalive report failed'))
  }
}
