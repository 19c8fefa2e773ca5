import { Code, ConnectError } from '@connectrpc/connect'
import { describe, expect, it } from 'vitest'
import { EventQueue, keepaliveMs } from './event-queue.js'

async function collect<T>(it: AsyncGenerator<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

describe('EventQueue', () => {
  it('yields pushed items in order, then ends', async () => {
    const q = new EventQueue<number>()
    q.push(1, 10)
    q.push(2, 5)
    expect(q.bytes).toBe(15)
    setTimeout(() => {
      q.push(3)
      q.end()
    }, 5)
    expect(await collect(q.drain(new AbortController().signal))).toEqual([1, 2, 3])
    expect(q.bytes).toBe(0)
  })

  it('emits keepalives while idle', async () => {
    const q = new EventQueue<string>()
    setTimeout(() => q.end(), 70)
    const out = await collect(q.drain(new AbortController().signal, { ms: 20, make: () => 'ka' }))
    expect(out.length).toBeGreaterThanOrEqual(2)
    expect(new Set(out)).toEqual(new Set(['ka']))
  })

  it('throws the abort reason as a ConnectError', async () => {
    const q = new EventQueue<number>()
    const ac = new AbortController()
    setTimeout(() => ac.abort(new ConnectError('late', Code.DeadlineExceeded)), 5)
    await expect(collect(q.drain(ac.signal))).rejects.toMatchObject({
      code: Code.DeadlineExceeded,
    })
  })

  it('rethrows a producer failure after the items', async () => {
    const q = new EventQueue<number>()
    q.push(1)
    q.fail(new Error('boom'))
    const seen: number[] = []
    await expect(
      (async () => {
        for await (const x of q.drain(new AbortController().signal)) seen.push(x)
      })(),
    ).rejects.toThrow('boom')
    expect(seen).toEqual([1])
  })
})

describe('keepaliveMs', () => {
  it.each([
    ['50', 50_000],
    ['0', undefined],
    ['x', undefined],
    [null, undefined],
  ])('%s → %s', (h, ms) => {
    expect(keepaliveMs(h)).toBe(ms)
  })
})
