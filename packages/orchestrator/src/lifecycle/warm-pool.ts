import type { Logger } from '@warren/shared'
import type { CreateSpec, NodeHost, WarmSandbox } from '../host/node-host.js'
import type { TemplateMetadata } from '../templates/metadata.js'

/** Warm sandboxes booting at once, node-wide: refills never crowd out creates. */
const MAX_STARTING = 2
/** After a warm start fails, its template waits this long before the next try. */
const RETRY_AFTER_MS = 5000
/** How often sizes are checked against demand and refills retried. */
const TICK_MS = 1000
/**
 * A take's refill waits this long: the sandbox just handed out is about to
 * run its first command, which should not share the node's CPUs with the
 * boot of its replacement.
 */
const REFILL_DELAY_MS = 200

export interface WarmPoolOptions {
  host: NodeHost
  log: Logger
  /** Warm sandboxes wanted per template id (WARREN_WARM_POOL). */
  sizes: Record<string, number>
  /** A template not claimed from for this long keeps one fewer per such period. */
  idleMs: number
  /** Takes a warm sandbox's memory if it fits without evicting anything. */
  tryReserve(memoryMb: number): boolean
  releaseMemory(memoryMb: number): void
  now?: () => number
}

/**
 * The node's warm sandboxes, per template. A take is synchronous — a warm
 * sandbox leaves the pool in the same turn it is chosen — so two creates
 * never get the same one, and one never comes back: a claim that fails
 * destroys it (see NodeHost.claimWarm). Refills run in the background, at
 * most MAX_STARTING at once, and only into memory that is free; a create
 * that needs the room evicts warm sandboxes first (`evict`). Each template's
 * size follows demand: full while it is claimed from, one fewer per idle
 * period without a create, down to none.
 */
export class WarmPool {
  private readonly ready = new Map<string, WarmSandbox[]>()
  /** Warm sandboxes booting; a cancelled one gave its memory to a create and is removed once up. */
  private readonly starting = new Set<{
    templateId: string
    memoryMb: number
    cancelled: boolean
  }>()
  private readonly lastDemand = new Map<string, number>()
  private readonly failedAt = new Map<string, number>()
  private readonly pending = new Set<Promise<unknown>>()
  private readonly now: () => number
  private timer: NodeJS.Timeout | undefined
  private refill: NodeJS.Timeout | undefined
  private running = false

  constructor(private readonly opts: WarmPoolOptions) {
    this.now = opts.now ?? Date.now
  }

  /** Starts filling, and the periodic check of sizes against demand. */
  start(): void {
    if (!this.enabled() || this.running) return
    this.running = true
    const t = this.now()
    for (const id of Object.keys(this.opts.sizes)) this.lastDemand.set(id, t)
    this.fill()
    this.timer = setInterval(() => this.fill(), TICK_MS)
    this.timer.unref()
  }

  /** Stops refilling and removes every warm sandbox (after those still booting). */
  async stop(): Promise<void> {
    this.running = false
    if (this.timer) clearInterval(this.timer)
    if (this.refill) clearTimeout(this.refill)
    this.timer = undefined
    this.refill = undefined
    while (this.pending.size) await Promise.allSettled([...this.pending])
    for (const list of this.ready.values()) for (const w of list.splice(0)) this.remove(w)
    while (this.pending.size) await Promise.allSettled([...this.pending])
  }

  /**
   * A warm sandbox for this create, removed from the pool, or undefined when
   * none fits (another template or build, other resources, gVisor, volumes).
   * Its memory is already reserved; it becomes the create's.
   */
  take(spec: CreateSpec): WarmSandbox | undefined {
    const templateId = spec.template.templateId
    if (!this.running || !(templateId in this.opts.sizes)) return undefined
    this.lastDemand.set(templateId, this.now())
    let warm: WarmSandbox | undefined
    if (spec.isolation === 'runc' && spec.volumeMounts.length === 0) {
      const list = this.ready.get(templateId) ?? []
      const i = list.findIndex(
        (w) =>
          w.buildId === spec.template.buildId &&
          w.cpuCount === spec.cpuCount &&
          w.memoryMb === spec.memoryMb &&
          w.diskSizeMb === spec.diskSizeMb,
      )
      if (i >= 0) warm = list.splice(i, 1)[0]
    }
    this.refill ??= setTimeout(() => {
      this.refill = undefined
      this.fill()
    }, REFILL_DELAY_MS)
    this.refill.unref()
    return warm
  }

  /**
   * Frees `memoryMb` (or all the pool holds) for a create: ready warm
   * sandboxes are removed, then booting ones are cancelled (removed once
   * up). Their memory goes back at once; removals run in the background.
   */
  evict(memoryMb: number): void {
    let freed = 0
    for (const list of this.ready.values()) {
      while (freed < memoryMb && list.length) {
        const w = list.shift() as WarmSandbox
        freed += w.memoryMb
        this.remove(w)
      }
    }
    for (const s of this.starting) {
      if (freed >= memoryMb) break
      if (s.cancelled) continue
      s.cancelled = true
      freed += s.memoryMb
      this.opts.releaseMemory(s.memoryMb)
    }
    if (freed) this.opts.log.info({ freedMb: freed }, 'warm sandboxes evicted for a create')
  }

  /** Memory the pool holds now, ready or booting (what `evict` can free). */
  memoryMb(): number {
    let mb = 0
    for (const list of this.ready.values()) for (const w of list) mb += w.memoryMb
    for (const s of this.starting) if (!s.cancelled) mb += s.memoryMb
    return mb
  }

  /** Warm sandboxes ready to be claimed, per template. */
  sizes(): Record<string, number> {
    return Object.fromEntries([...this.ready].map(([id, list]) => [id, list.length]))
  }

  /** Template builds warm sandboxes stand on (`templateId/buildId`): not to be deleted. */
  buildsInUse(): string[] {
    return [...this.ready.values()].flat().map((w) => `${w.templateId}/${w.buildId}`)
  }

  /** How many this template should have now: its size less one per idle period. */
  target(templateId: string): number {
    const size = this.opts.sizes[templateId] ?? 0
    const idle = this.now() - (this.lastDemand.get(templateId) ?? this.now())
    return Math.max(0, size - Math.floor(idle / this.opts.idleMs))
  }

  private enabled(): boolean {
    return Object.values(this.opts.sizes).some((n) => n > 0)
  }

  /** Brings every template's pool toward its target: shrinks at once, grows within bounds. */
  private fill(): void {
    if (!this.running) return
    for (const templateId of Object.keys(this.opts.sizes)) {
      const list = this.ready.get(templateId) ?? []
      this.ready.set(templateId, list)
      let template: TemplateMetadata | undefined
      try {
        template = this.opts.host.template(templateId)
      } catch {
        // Not on this node (yet), or deleted: nothing of it stays warm.
      }
      for (const w of list.filter((w) => w.buildId !== template?.buildId)) {
        list.splice(list.indexOf(w), 1)
        this.remove(w)
      }
      const target = this.target(templateId)
      while (list.length > target) this.remove(list.pop() as WarmSandbox)
      if (!template || this.now() - (this.failedAt.get(templateId) ?? -Infinity) < RETRY_AFTER_MS)
        continue
      while (
        list.length + this.startingOf(templateId) < target &&
        this.starting.size < MAX_STARTING &&
        this.opts.tryReserve(template.memoryMB)
      )
        this.startOne(template)
    }
  }

  private startOne(template: TemplateMetadata): void {
    const { templateId } = template
    const booting = { templateId, memoryMb: template.memoryMB, cancelled: false }
    this.starting.add(booting)
    this.track(
      this.opts.host.startWarm(template).then(
        (warm) => {
          this.starting.delete(booting)
          // Evicted, stopped, or the template moved on while it booted: not to be claimed.
          const list = this.ready.get(templateId)
          if (booting.cancelled) this.remove(warm, { memoryHeld: false })
          else if (!this.running || !list || this.currentBuild(templateId) !== warm.buildId)
            this.remove(warm)
          else list.push(warm)
          this.fill()
        },
        (err) => {
          this.starting.delete(booting)
          if (!booting.cancelled) this.opts.releaseMemory(template.memoryMB)
          this.failedAt.set(templateId, this.now())
          this.opts.log.warn({ err, templateId }, 'a warm sandbox did not start')
        },
      ),
    )
  }

  /** Releases a warm sandbox's memory (unless already given up) and destroys it in the background. */
  private remove(warm: WarmSandbox, opts: { memoryHeld: boolean } = { memoryHeld: true }): void {
    if (opts.memoryHeld) this.opts.releaseMemory(warm.memoryMb)
    this.track(
      this.opts.host.destroyWarm(warm).then(
        (errors) => {
          for (const err of errors)
            this.opts.log.error({ err, warm: warm.name }, 'warm sandbox removal step failed')
        },
        (err) => this.opts.log.error({ err, warm: warm.name }, 'warm sandbox removal failed'),
      ),
    )
  }

  private currentBuild(templateId: string): string | undefined {
    try {
      return this.opts.host.template(templateId).buildId
    } catch {
      return undefined
    }
  }

  private startingOf(templateId: string): number {
    let n = 0
    for (const s of this.starting) if (s.templateId === templateId && !s.cancelled) n++
    return n
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p)
    void p.finally(() => this.pending.delete(p))
  }
}
