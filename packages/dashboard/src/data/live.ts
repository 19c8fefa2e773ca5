import { useEffect, useRef, useState } from 'preact/hooks'

// Live data without a reload. Each pane subscribes to a topic and refetches
// it when the topic is invalidated. What invalidates topics is one
// replaceable part: today a timer (every topic, every interval); once the
// API streams lifecycle events (GET /events), an EventSource whose events
// name the topics they touch — the panes stay as they are.

export type Topic = 'sandboxes' | 'sandbox' | 'templates' | 'keys' | 'teams' | 'nodes'

/** Calls `invalidate` when data may have changed (no topic: all); returns its stop. */
export type Invalidator = (invalidate: (topic?: Topic) => void) => () => void

export function pollingInvalidator(intervalMs: number): Invalidator {
  return (invalidate) => {
    const timer = setInterval(() => invalidate(), intervalMs)
    return () => clearInterval(timer)
  }
}

export interface Live {
  /** Marks a topic stale now (after an action of this page, say). */
  invalidate(topic?: Topic): void
  subscribe(topic: Topic, fn: () => void): () => void
  stop(): void
}

export function createLive(invalidator: Invalidator): Live {
  const subs = new Map<Topic, Set<() => void>>()
  const invalidate = (topic?: Topic) => {
    for (const [t, fns] of subs) if (!topic || t === topic) for (const fn of fns) fn()
  }
  const stop = invalidator(invalidate)
  return {
    invalidate,
    subscribe(topic, fn) {
      const set = subs.get(topic) ?? new Set()
      subs.set(topic, set)
      set.add(fn)
      return () => set.delete(fn)
    },
    stop,
  }
}

export interface LiveState<T> {
  data: T | undefined
  error: string | undefined
}

/**
 * The latest answer of `fetch` for a topic. A fetch still in flight is not
 * started again (a slow server is not piled on); an error keeps the last data.
 */
export function useLive<T>(
  live: Live,
  topic: Topic,
  fetch: () => Promise<T>,
  deps: unknown[] = [],
): LiveState<T> {
  const [state, setState] = useState<LiveState<T>>({ data: undefined, error: undefined })
  const busy = useRef(false)
  useEffect(() => {
    let alive = true
    const run = () => {
      if (busy.current) return
      busy.current = true
      fetch()
        .then((data) => alive && setState({ data, error: undefined }))
        .catch(
          (err: unknown) =>
            alive &&
            setState((s) => ({
              data: s.data,
              error: err instanceof Error ? err.message : String(err),
            })),
        )
        .finally(() => {
          busy.current = false
        })
    }
    run()
    const unsubscribe = live.subscribe(topic, run)
    return () => {
      alive = false
      busy.current = false
      unsubscribe()
    }
  }, [live, topic, ...deps])
  return state
}

/** The current time, ticking: countdowns move between fetches. */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), intervalMs)
    return () => clearInterval(t)
  }, [intervalMs])
  return now
}
