import type { MessageInitShape } from '@bufbuild/protobuf'
import type { ProcessEventSchema } from '@warren/shared/gen/process/process_pb'
import { EventQueue } from '../../util/event-queue.js'
import type { ExitInfo } from './exit-info.js'
import type { Proc } from './spawn.js'

export type ProcessEventInit = MessageInitShape<typeof ProcessEventSchema>

export interface ProcessConfigInfo {
  cmd: string
  args: string[]
  envs: Record<string, string>
  cwd: string
}

/** Above this many queued bytes on any attached stream, output is paused. */
const HIGH_WATER = 1 << 20
const LOW_WATER = 256 << 10

/**
 * A process in the registry: fans its output out to the streams attached to
 * it (Start, and any number of Connect re-attaches). With nobody attached,
 * output is dropped so the process never blocks on a full pipe; with a slow
 * stream attached, the process's output is paused until that stream drains.
 */
export class ProcessHandle {
  private readonly subscribers = new Set<EventQueue<ProcessEventInit>>()
  private paused = false
  private killTimer: NodeJS.Timeout | undefined
  ended: ExitInfo | undefined
  private readonly exitWaiters: ((info: ExitInfo) => void)[] = []

  constructor(
    readonly proc: Proc,
    readonly config: ProcessConfigInfo,
    readonly tag: string | undefined,
  ) {
    proc.onData((stream, chunk) => {
      if (this.subscribers.size === 0) return
      const event: ProcessEventInit = {
        event: { case: 'data', value: { output: { case: stream, value: chunk } } },
      }
      for (const q of this.subscribers) q.push(event, chunk.length)
      this.applyBackpressure()
    })
    proc.onExit((info) => {
      this.ended = info
      clearTimeout(this.killTimer)
      for (const q of this.subscribers) {
        q.push({ event: { case: 'end', value: info } })
        q.end()
      }
      this.subscribers.clear()
      this.resumeIfPaused()
      for (const w of this.exitWaiters.splice(0)) w(info)
    })
  }

  get pid(): number {
    return this.proc.pid
  }

  /** A new stream of this process's events; detach() when the client leaves. */
  attach(): { queue: EventQueue<ProcessEventInit>; detach: () => void } {
    const queue = new EventQueue<ProcessEventInit>()
    if (this.ended) {
      queue.push({ event: { case: 'end', value: this.ended } })
      queue.end()
      return { queue, detach: () => {} }
    }
    queue.onTake = () => this.resumeIfDrained()
    this.subscribers.add(queue)
    return {
      queue,
      detach: () => {
        this.subscribers.delete(queue)
        this.resumeIfDrained()
      },
    }
  }

  /** SIGKILL at the deadline, as E2B bounds a process by Connect-Timeout-Ms. */
  killAfter(ms: number): void {
    clearTimeout(this.killTimer)
    this.killTimer = setTimeout(() => this.proc.kill('SIGKILL'), ms)
    this.killTimer.unref()
  }

  waitExit(): Promise<ExitInfo> {
    if (this.ended) return Promise.resolve(this.ended)
    return new Promise((resolve) => this.exitWaiters.push(resolve))
  }

  private applyBackpressure(): void {
    if (this.paused) return
    for (const q of this.subscribers) {
      if (q.bytes > HIGH_WATER) {
        this.paused = true
        this.proc.pause()
        return
      }
    }
  }

  private resumeIfDrained(): void {
    if (!this.paused) return
    for (const q of this.subscribers) if (q.bytes > LOW_WATER) return
    this.resumeIfPaused()
  }

  private resumeIfPaused(): void {
    if (!this.paused) return
    this.paused = false
    this.proc.resume()
  }
}
