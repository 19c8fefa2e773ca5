/**
 * Shares one in-flight promise per key: while `fn` runs for a key, every
 * other caller of `run` with that key gets the same promise (and so the same
 * outcome) instead of starting `fn` again. The key is forgotten when the
 * promise settles; the next call starts afresh.
 */
export class SingleFlight<T> {
  private readonly flights = new Map<string, Promise<T>>()

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const current = this.flights.get(key)
    if (current) return current
    // A synchronous throw becomes the flight's rejection, like an async one.
    const flight = new Promise<T>((resolve) => resolve(fn())).finally(() => {
      if (this.flights.get(key) === flight) this.flights.delete(key)
    })
    this.flights.set(key, flight)
    return flight
  }

  /** Whether a call for `key` is in flight. */
  has(key: string): boolean {
    return this.flights.has(key)
  }

  /** Keys in flight. */
  get size(): number {
    return this.flights.size
  }
}
