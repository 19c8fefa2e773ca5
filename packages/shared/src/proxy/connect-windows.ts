import {
  CONNECT_WINDOW_DEFAULTS,
  ConnectWindow,
  type ConnectWindowOptions,
} from './connect-window.js'

const IDLE_MS = 60_000
const MAX_WINDOWS = 4096

/**
 * The connect windows of a node's sandbox ports, by sandbox and port. A
 * window lives while its port is used: one idle for a minute is dropped (by
 * a sweep that runs while windows exist and never keeps the process alive),
 * the least recently used goes when there are too many, and `forget` drops a
 * sandbox's at once when it is paused or killed — its address may serve
 * another sandbox next, whose server is not this one.
 */
export class ConnectWindows {
  private readonly windows = new Map<string, ConnectWindow>()
  private sweeper: NodeJS.Timeout | undefined

  constructor(private readonly opts: ConnectWindowOptions = CONNECT_WINDOW_DEFAULTS) {}

  get size(): number {
    return this.windows.size
  }

  of(sandboxId: string, port: number): ConnectWindow {
    const key = `${sandboxId}:${port}`
    let w = this.windows.get(key)
    if (!w) {
      if (this.windows.size >= MAX_WINDOWS) this.evictOldest()
      w = new ConnectWindow(this.opts, `port ${port} of sandbox ${sandboxId}`)
      this.windows.set(key, w)
      this.sweeper ??= setInterval(() => this.sweep(), IDLE_MS).unref()
    }
    w.used = Date.now()
    return w
  }

  /** Drops a sandbox's windows; connections waiting in them fail. */
  forget(sandboxId: string): void {
    const prefix = `${sandboxId}:`
    for (const [key, w] of this.windows) {
      if (key.startsWith(prefix)) {
        this.windows.delete(key)
        w.close()
      }
    }
  }

  close(): void {
    clearInterval(this.sweeper)
    this.sweeper = undefined
    for (const w of this.windows.values()) w.close()
    this.windows.clear()
  }

  private sweep(): void {
    const cutoff = Date.now() - IDLE_MS
    for (const [key, w] of this.windows) {
      const { inFlight, waiting } = w.pending
      if (w.used < cutoff && inFlight === 0 && waiting === 0) this.windows.delete(key)
    }
    if (!this.windows.size) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  private evictOldest(): void {
    let oldest: [string, ConnectWindow] | undefined
    for (const e of this.windows) if (!oldest || e[1].used < oldest[1].used) oldest = e
    // An evicted window's connections keep their places in it; new ones get a new window.
    if (oldest) this.windows.delete(oldest[0])
  }
}
