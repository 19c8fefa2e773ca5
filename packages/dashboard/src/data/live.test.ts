// The dashboard's refresh plumbing: the invalidator alone decides when
// topics refetch (a timer today), an invalidation reaches only its topic's
// subscribers, and stop() ends it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { countdown } from './format.js'
import { createLive, type Invalidator, pollingInvalidator, type Topic } from './live.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('createLive', () => {
  it('invalidates every topic at each tick of the polling invalidator, until stopped', () => {
    const live = createLive(pollingInvalidator(1500))
    const seen: Topic[] = []
    live.subscribe('sandboxes', () => seen.push('sandboxes'))
    live.subscribe('keys', () => seen.push('keys'))
    vi.advanceTimersByTime(1499)
    expect(seen).toEqual([])
    vi.advanceTimersByTime(1)
    expect(seen.sort()).toEqual(['keys', 'sandboxes'])
    live.stop()
    vi.advanceTimersByTime(10_000)
    expect(seen).toHaveLength(2)
  })

  it('lets another invalidator (an event stream) name the topics it touches', () => {
    let push: ((topic?: Topic) => void) | undefined
    const events: Invalidator = (invalidate) => {
      push = invalidate
      return () => {
        push = undefined
      }
    }
    const live = createLive(events)
    const seen: Topic[] = []
    const off = live.subscribe('sandboxes', () => seen.push('sandboxes'))
    live.subscribe('nodes', () => seen.push('nodes'))
    push?.('sandboxes')
    expect(seen).toEqual(['sandboxes'])
    live.invalidate('nodes')
    expect(seen).toEqual(['sandboxes', 'nodes'])
    off()
    push?.('sandboxes')
    expect(seen).toEqual(['sandboxes', 'nodes'])
    live.stop()
    expect(push).toBeUndefined()
  })
})

describe('countdown', () => {
  it.each([
    [-5_000, '0s'],
    [0, '0s'],
    [59_999, '59s'],
    [60_000, '1m 00s'],
    [3_599_000, '59m 59s'],
    [3_600_000, '1h 00m 00s'],
    [86_400_000 + 65_000, '24h 01m 05s'],
  ])('%d ms → %s', (ms, text) => {
    expect(countdown(ms)).toBe(text)
  })
})
