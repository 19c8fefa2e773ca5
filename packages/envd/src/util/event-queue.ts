import { Code, ConnectError } from '@connectrpc/connect'

/**
 * A queue between a producer (a process, a directory watcher) and one stream
 * response. `drain` yields items in order, keepalives while idle, and throws
 * the handler's abort reason (deadline, client gone) as a ConnectError.
 * `bytes` lets producers apply backpressure instead of buffering without end.
 */
export class EventQueue<T> {
  private items: { item: T; size: number }[] = []
  private ended = false
  private failure: unknown
  private wake: (() => void) | undefined
  bytes = 0
  /** Called when a consumer takes items out; producers resume from here. */
  onTake: (() => void) | undefined

  push(item: T, size = 0): void {
    if (this.ended) return
    this.items.push({ item, size })
    this.bytes += size
    this.notify()
  }

  end(): void {
    this.ended = true
    this.notify()
  }

  fail(err: unknown): void {
    this.failure = err
    this.ended = true
    this.notify()
  }

  private notify(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  async *drain(signal: AbortSignal, keepalive?: { ms: number; make: () => T }): AsyncGenerator<T> {
    const onAbort = () => this.notify()
    signal.addEventListener('abort', onAbort)
    try {
      for (;;) {
        if (signal.aborted) throw ConnectError.from(signal.reason, Code.Canceled)
        const next = this.items.shift()
        if (next) {
          this.bytes -= next.size
          this.onTake?.()
          yield next.item
          continue
        }
        if (this.ended) {
          if (this.failure !== undefined) throw this.failure
          return
        }
        let timer: NodeJS.Timeout | undefined
        const timedOut = await new Promise<boolean>((resolve) => {
          this.wake = () => resolve(false)
          if (keepalive) timer = setTimeout(() => resolve(true), keepalive.ms)
        })
        clearTimeout(timer)
        this.wake = undefined
        if (timedOut && keepalive) yield keepalive.make()
      }
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }
}

/** `Keepalive-Ping-Interval` (seconds), as the SDK sends it on streams. */
export function keepaliveMs(header: string | null): number | undefined {
  if (!header) return undefined
  const seconds = Number(header)
  if (!Number.isFinite(seconds) || seconds <= 0) return undefined
  return Math.max(1, seconds) * 1000
}
