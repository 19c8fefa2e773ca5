/**
 * Deadlines keyed by id, with the earliest first. Setting an id again
 * supersedes its old deadline: old heap entries stay until they surface and
 * are then skipped, so every operation is O(log n).
 */
export class DeadlineQueue {
  private readonly heap: Array<[number, string]> = []
  private readonly current = new Map<string, number>()

  get size(): number {
    return this.current.size
  }

  set(id: string, at: number): void {
    this.current.set(id, at)
    this.heap.push([at, id])
    this.up(this.heap.length - 1)
  }

  delete(id: string): void {
    this.current.delete(id)
  }

  /** The earliest live deadline, if any. */
  peek(): number | undefined {
    this.dropStale()
    return this.heap[0]?.[0]
  }

  /** Removes and returns every id whose deadline is at or before `now`. */
  takeDue(now: number): Array<{ id: string; at: number }> {
    const due: Array<{ id: string; at: number }> = []
    for (let top = this.peek(); top !== undefined && top <= now; top = this.peek()) {
      const [at, id] = this.pop()
      this.current.delete(id)
      due.push({ id, at })
    }
    return due
  }

  private dropStale(): void {
    while (this.heap.length) {
      const [at, id] = this.heap[0]!
      if (this.current.get(id) === at) return
      this.pop()
    }
  }

  private pop(): [number, string] {
    const top = this.heap[0]!
    const last = this.heap.pop()!
    if (this.heap.length) {
      this.heap[0] = last
      this.down(0)
    }
    return top
  }

  private up(i: number): void {
    const h = this.heap
    while (i > 0) {
      const p = (i - 1) >> 1
      if (h[p]![0] <= h[i]![0]) return
      ;[h[p], h[i]] = [h[i]!, h[p]!]
      i = p
    }
  }

  private down(i: number): void {
    const h = this.heap
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && h[l]![0] < h[m]![0]) m = l
      if (r < h.length && h[r]![0] < h[m]![0]) m = r
      if (m === i) return
      ;[h[m], h[i]] = [h[i]!, h[m]!]
      i = m
    }
  }
}
