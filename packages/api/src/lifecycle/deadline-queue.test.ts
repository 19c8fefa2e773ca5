import { describe, expect, it } from 'vitest'
import { DeadlineQueue } from './deadline-queue.js'

describe('DeadlineQueue', () => {
  it('returns due ids earliest first and keeps the rest', () => {
    const q = new DeadlineQueue()
    q.set('c', 30)
    q.set('a', 10)
    q.set('b', 20)
    expect(q.takeDue(20).map((d) => d.id)).toEqual(['a', 'b'])
    expect(q.peek()).toBe(30)
    expect(q.size).toBe(1)
  })

  it('a later set supersedes an earlier deadline, either way', () => {
    const q = new DeadlineQueue()
    q.set('a', 10)
    q.set('a', 50)
    q.set('b', 40)
    q.set('b', 5)
    expect(q.takeDue(20)).toEqual([{ id: 'b', at: 5 }])
    expect(q.takeDue(49)).toEqual([])
    expect(q.takeDue(50)).toEqual([{ id: 'a', at: 50 }])
    expect(q.peek()).toBeUndefined()
  })

  it('forgets deleted ids', () => {
    const q = new DeadlineQueue()
    q.set('a', 10)
    q.delete('a')
    expect(q.takeDue(100)).toEqual([])
  })

  it('orders many random deadlines', () => {
    const q = new DeadlineQueue()
    const at = Array.from({ length: 500 }, (_, i) => ({
      id: String(i),
      at: Math.floor(Math.random() * 1e6),
    }))
    for (const d of at) q.set(d.id, d.at)
    const got = q.takeDue(1e6).map((d) => d.at)
    expect(got).toEqual([...got].sort((a, b) => a - b))
    expect(got).toHaveLength(500)
  })
})
