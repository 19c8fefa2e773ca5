/**
 * Serializes operations per key: `run(key, fn)` starts `fn` once every
 * earlier operation on the same key has settled (whether it succeeded or
 * failed) and hands the caller `fn`'s own result or error. Operations on
 * different keys do not wait for each other. A key is forgotten as soon as
 * its queue is empty, so the map holds only keys with work queued or running.
 */
export class KeyedLock {
  /** Per key, the settlement of its last queued operation; it never rejects. */
  private readonly tails = new Map<string, Promise<void>>()

  run<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve()
    const result = previous.then(fn)
    const tail = result.then(noop, noop)
    this.tails.set(key, tail)
    void tail.then(() => {
      // A later operation queued behind this one owns the key now.
      if (this.tails.get(key) === tail) this.tails.delete(key)
    })
    return result
  }

  /** Keys with an operation queued or running. */
  get size(): number {
    return this.tails.size
  }
}

function noop(): void {}
