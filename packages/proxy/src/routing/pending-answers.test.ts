import { create } from '@bufbuild/protobuf'
import type { ProxyError } from '@warren/shared'
import { type Route, RouteSchema, RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { describe, expect, it } from 'vitest'
import { PendingAnswers } from './pending-answers.js'

const route = (sandboxId: string, state: RouteState): Route =>
  create(RouteSchema, { sandboxId, state, nodeProxyUrl: 'http://127.0.0.1:9' })

// Refused unless running; gone is 502; the port shows in the answer.
const refusal = (sandboxId: string, r: Route | undefined, port: number): ProxyError | undefined =>
  !r
    ? { status: 502, sandboxId, message: 'gone' }
    : r.state === RouteState.RUNNING
      ? undefined
      : { status: 503, sandboxId, port, message: 'pausing' }

describe('PendingAnswers', () => {
  it('ends the waiting requests of a sandbox that stops serving with what a new one would get', () => {
    const pending = new PendingAnswers(refusal)
    const a = pending.track('a', 8000)
    const b = pending.track('b', 8000)
    const answered = pending.track('a', 9000)
    answered.settled() // its answer began: left alone
    pending.apply({ kind: 'upsert', route: route('a', RouteState.RUNNING) })
    expect(a.reason).toBeUndefined()
    pending.apply({ kind: 'upsert', route: route('a', RouteState.PAUSING) })
    expect(a.reason).toMatchObject({ status: 503, port: 8000 })
    expect(answered.reason).toBeUndefined()
    expect(b.reason).toBeUndefined()
  })

  it('ends those a snapshot no longer lists, and those removed', () => {
    const pending = new PendingAnswers(refusal)
    const kept = pending.track('kept', 80)
    const dropped = pending.track('dropped', 80)
    pending.apply({ kind: 'snapshot', routes: [route('kept', RouteState.RUNNING)] })
    expect(kept.reason).toBeUndefined()
    expect(dropped.reason).toMatchObject({ status: 502 })
    pending.apply({ kind: 'remove', sandboxId: 'kept' })
    expect(kept.reason).toMatchObject({ status: 502 })
  })

  it('calls onAbort, and emits abort on the signal of those that asked for it', () => {
    const pending = new PendingAnswers(refusal)
    const quiet = pending.track('a', 80)
    const heard = pending.track('a', 81)
    const calls: string[] = []
    quiet.onAbort = () => calls.push(`quiet ${quiet.reason?.status}`)
    heard.signal.once('abort', () => calls.push(`heard ${heard.reason?.status}`))
    pending.apply({ kind: 'remove', sandboxId: 'a' })
    expect(calls.sort()).toEqual(['heard 502', 'quiet 502'])
  })

  it('forgets what settled: nothing is held once every request ended', () => {
    const pending = new PendingAnswers(refusal)
    const all = Array.from({ length: 100 }, (_, i) => pending.track(`s${i % 7}`, 80))
    for (const p of all) p.settled()
    for (const p of all) p.settled() // twice is harmless
    expect((pending as unknown as { bySandbox: Map<string, unknown> }).bySandbox.size).toBe(0)
  })
})
