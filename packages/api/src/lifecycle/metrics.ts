import { Counter, Histogram, Registry } from 'prom-client'

/** The control plane's counters, served in Prometheus text on the internal port. */
export class LifecycleMetrics {
  readonly registry = new Registry()
  readonly created = new Counter({
    name: 'warren_sandboxes_created_total',
    help: 'Sandboxes created',
    registers: [this.registry],
  })
  readonly killed = new Counter({
    name: 'warren_sandboxes_killed_total',
    help: 'Sandboxes killed, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  })
  readonly paused = new Counter({
    name: 'warren_sandboxes_paused_total',
    help: 'Pauses, by kind',
    labelNames: ['kind'],
    registers: [this.registry],
  })
  readonly resumed = new Counter({
    name: 'warren_sandboxes_resumed_total',
    help: 'Resumes, by what they resumed from (memory: hot, files: cold) and trigger',
    labelNames: ['from', 'trigger'],
    registers: [this.registry],
  })
  readonly expiryLateness = new Histogram({
    name: 'warren_expiry_lateness_seconds',
    help: 'How long after its endAt each expiry fired on this replica',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    registers: [this.registry],
  })
  readonly keepaliveCalls = new Counter({
    name: 'warren_keepalive_calls_total',
    help: 'KeepAliveSandbox calls received from proxies',
    registers: [this.registry],
  })
  readonly durations = new Histogram({
    name: 'warren_lifecycle_duration_seconds',
    help: 'How long lifecycle operations took until settled (a create from its request; pause, resume, kill from their transitional state), by operation and outcome',
    labelNames: ['op', 'outcome'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  })

  /** Runs one lifecycle operation, timed (outcome `ok` or `error`). */
  async timed<T>(op: 'create' | 'pause' | 'resume' | 'kill', fn: () => Promise<T>): Promise<T> {
    const end = this.durations.startTimer({ op })
    try {
      const r = await fn()
      end({ outcome: 'ok' })
      return r
    } catch (err) {
      end({ outcome: 'error' })
      throw err
    }
  }

  readonly keepaliveExtensions = new Counter({
    name: 'warren_keepalive_extensions_total',
    help: 'KeepAliveSandbox calls that moved a lease',
    registers: [this.registry],
  })
}
