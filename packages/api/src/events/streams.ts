import { WarrenError } from '@warren/shared'
import type { Db } from '../store/db.js'
import type { EventTail } from './tail.js'

/** Event streams one replica serves at once; past it a new one is refused (503). */
export const MAX_STREAMS = 1000

/** What the event routes need: the store, this replica's tail, and the open streams. */
export class EventStreams {
  private readonly open = new Set<AbortController>()

  constructor(
    readonly db: Db,
    readonly tail: EventTail,
    /** Between two comments on a silent stream, so proxies and clients see it alive. */
    readonly pingMs = 15_000,
  ) {}

  /** A stream's lifetime: aborted when the client goes or the API stops. */
  begin(): { signal: AbortSignal; end: () => void } {
    if (this.open.size >= MAX_STREAMS)
      throw new WarrenError('unavailable', `this API serves ${MAX_STREAMS} event streams already`)
    const ctl = new AbortController()
    this.open.add(ctl)
    return { signal: ctl.signal, end: () => this.open.delete(ctl) && ctl.abort() }
  }

  /** Ends every stream (the API is stopping). */
  closeAll(): void {
    for (const ctl of this.open) ctl.abort()
    this.open.clear()
  }
}
