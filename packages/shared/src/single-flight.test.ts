import { describe, expect, it } from 'vitest'
import { SingleFlight } from './single-flight.js'

const tick = () => new Promise<void>((r) => setImmediate(r))

describe('SingleFlight', () => {
  it.each([
    { name: 'a success', outcome: () => Promise.resolve('done'), want: 'done' },
    { name: 'a failure', outcome: () => Promise.reject(new Error('boom')), want: Error },
  ])('concurrent callers of one key share one call and get $name', async ({ outcome, want }) => {
    const flights = new SingleFlight<string>()
    let calls = 0
    let release!: () => void
    const gate = new Promise<void>((r) => {
      release = r
    })
    const fn = async () => {
      calls++
      await gate
      return outcome()
    }
    const all = Array.from({ length: 5 }, () => flights.run('k', fn))
    expect(new Set(all).size).toBe(1)
    expect(flights.has('k')).toBe(true)
    release()
    const results = await Promise.allSettled(all)
    expect(calls).toBe(1)
    for (const r of results) {
      if (want === Error)
        expect(r).toMatchObject({ status: 'rejected', reason: { message: 'boom' } })
      else expect(r).toEqual({ status: 'fulfilled', value: want })
    }
  })

  it('runs different keys separately', async () => {
    const flights = new SingleFlight<string>()
    const [a, b] = await Promise.all([
      flights.run('a', async () => 'a'),
      flights.run('b', async () => 'b'),
    ])
    expect([a, b]).toEqual(['a', 'b'])
  })

  it('forgets a key when its call settles; the next call starts afresh', async () => {
    const flights = new SingleFlight<number>()
    let calls = 0
    const fn = async () => ++calls
    expect(await flights.run('k', fn)).toBe(1)
    await tick()
    expect(flights.size).toBe(0)
    expect(await flights.run('k', fn)).toBe(2)
    await flights.run('k', () => Promise.reject(new Error('x'))).catch(() => {})
    await tick()
    expect(flights.has('k')).toBe(false)
  })

  it('turns a synchronous throw into a rejection of the shared call', async () => {
    const flights = new SingleFlight<number>()
    const p = flights.run('k', () => {
      throw new Error('sync')
    })
    await expect(p).rejects.toThrow('sync')
    await tick()
    expect(flights.size).toBe(0)
  })
})
