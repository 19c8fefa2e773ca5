import type { HandlerContext } from '@connectrpc/connect'
import { describe, expect, it } from 'vitest'
import { endOnAbort } from './end-on-abort.js'

function context(): { ctx: HandlerContext; abort: () => void } {
  const controller = new AbortController()
  return { ctx: { signal: controller.signal } as HandlerContext, abort: () => controller.abort() }
}

describe('endOnAbort', () => {
  it("runs the handler's finally when the client leaves while a write never completes", async () => {
    let cleanedUp = false
    const handler = endOnAbort(async function* (_req: unknown, _ctx: HandlerContext) {
      try {
        for (let i = 0; ; i++) yield i
      } finally {
        cleanedUp = true
      }
    })
    const { ctx, abort } = context()
    const it = handler({}, ctx)
    // connect's writer: takes the first item, then waits on a write that
    // gets no callback, no 'drain' and no 'error' (a destroyed socket).
    expect((await it.next()).value).toBe(0)
    const stuckWrite = new Promise<void>(() => {})
    void stuckWrite.then(() => it.next())
    abort()
    await new Promise((r) => setImmediate(r))
    expect(cleanedUp).toBe(true)
    expect(await it.next()).toEqual({ done: true, value: undefined })
  })

  it('never starts a handler whose client left before it was asked', async () => {
    let started = false
    const handler = endOnAbort(async function* (_req: unknown, _ctx: HandlerContext) {
      started = true
      yield 1
    })
    const { ctx, abort } = context()
    abort()
    const it = handler({}, ctx)
    expect(await it.next()).toEqual({ done: true, value: undefined })
    expect(started).toBe(false)
  })
})
