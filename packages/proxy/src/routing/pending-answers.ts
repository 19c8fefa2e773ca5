import { EventEmitter } from 'node:events'
import type { AnswerCancel, ProxyError } from '@warren/shared'
import type { Route } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import type { CatalogChange } from '../catalog/route-catalog.js'

/** One request waiting for its answer; its emitter is made only if someone listens. */
class Pending implements AnswerCancel {
  reason: ProxyError | undefined
  onAbort: (() => void) | undefined
  private emitter: EventEmitter | undefined

  constructor(
    private readonly sandboxId: string,
    readonly port: number,
    private readonly bySandbox: Map<string, Set<Pending>>,
  ) {}

  get signal(): EventEmitter {
    this.emitter ??= new EventEmitter()
    return this.emitter
  }

  abort(reason: ProxyError): void {
    this.reason = reason
    this.emitter?.emit('abort')
    this.onAbort?.()
  }

  settled(): void {
    const set = this.bySandbox.get(this.sandboxId)
    if (set?.delete(this) && !set.size) this.bySandbox.delete(this.sandboxId)
  }
}

/**
 * Requests sent on to a sandbox whose answer has not begun, by sandbox. When
 * the catalog then says the sandbox no longer serves (pausing, paused,
 * killed, gone), each of them is ended with the answer a new request would
 * get now, instead of waiting on a sandbox that is frozen or gone. A proxy
 * worker learns a pause a moment after the API started it, and may have
 * sent a request on in that moment; it would wait until the sandbox woke.
 * Answers already under way are left alone.
 */
export class PendingAnswers {
  private readonly bySandbox = new Map<string, Set<Pending>>()

  /** `refusal`: what a new request to this port would be answered now, if refused. */
  constructor(
    private readonly refusal: (
      sandboxId: string,
      route: Route | undefined,
      port: number,
    ) => ProxyError | undefined,
  ) {}

  track(sandboxId: string, port: number): AnswerCancel {
    let set = this.bySandbox.get(sandboxId)
    if (!set) {
      set = new Set()
      this.bySandbox.set(sandboxId, set)
    }
    const pending = new Pending(sandboxId, port, this.bySandbox)
    set.add(pending)
    return pending
  }

  /** Follows the edge's catalog (see Catalog.onChange). */
  apply(change: CatalogChange): void {
    switch (change.kind) {
      case 'upsert':
        this.changed(change.route.sandboxId, change.route)
        return
      case 'remove':
        this.changed(change.sandboxId, undefined)
        return
      case 'snapshot': {
        if (!this.bySandbox.size) return
        const routes = new Map(change.routes.map((r) => [r.sandboxId, r]))
        for (const id of [...this.bySandbox.keys()]) this.changed(id, routes.get(id))
        return
      }
    }
  }

  private changed(sandboxId: string, route: Route | undefined): void {
    const set = this.bySandbox.get(sandboxId)
    if (!set) return
    for (const p of [...set]) {
      const refused = this.refusal(sandboxId, route, p.port)
      if (!refused) continue
      set.delete(p)
      p.abort(refused)
    }
    if (!set.size) this.bySandbox.delete(sandboxId)
  }
}
