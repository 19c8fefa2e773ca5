import { describe, expect, it } from 'vitest'
import { KeyedLock } from './keyed-lock.js'

/** A promise with its resolve and reject exposed, for ordering operations by hand. */
function deferred<T = void>() {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

const tick = () => new Promise<void>((r) => setImmediate(r))

describe('KeyedLock', () => {
  it('runs operations on one key one at a time, in call order', async () => {
    const lock = new KeyedLock()
    const log: string[] = []
    const first = deferred()
    const a = lock.run('k', async () => {
      log.push('a start')
      await first.promise
      log.push('a end')
      return 'a'
    })
    const b = lock.run('k', () => {
      log.push('b')
      return 'b'
    })
    await tick()
    expect(log).toEqual(['a start'])
    first.resolve()
    expect(await Promise.all([a, b])).toEqual(['a', 'b'])
    expect(log).toEqual(['a start', 'a end', 'b'])
  })

  it('does not make different keys wait for each other', async () => {
    const lock = new KeyedLock()
    const blocked = deferred()
    const a = lock.run('a', () => blocked.promise)
    expect(await lock.run('b', () => 'b')).toBe('b')
    blocked.resolve()
    await a
  })

  it.each([
    { name: 'a rejection', fail: () => Promise.reject(new Error('boom')) },
    {
      name: 'a synchronous throw',
      fail: () => {
        throw new Error('boom')
      },
    },
  ])('gives $name to its caller only; the next operation still runs', async ({ fail }) => {
    const lock = new KeyedLock()
    const failed = lock.run('k', fail)
    const next = lock.run('k', () => 'next')
    await expect(failed).rejects.toThrow('boom')
    expect(await next).toBe('next')
  })

  it('forgets a key once its queue is empty', async () => {
    const lock = new KeyedLock()
    const gate = deferred()
    const a = lock.run('k', () => gate.promise)
    const b = lock.run('k', () => undefined)
    expect(lock.size).toBe(1)
    gate.resolve()
    await Promise.all([a, b])
    await tick()
    expect(lock.size).toBe(0)
    await lock.run('k', () => Promise.reject(new Error('x'))).catch(() => {})
    await tick()
    expect(lock.size).toBe(0)
  })
})
