import cluster, { type Worker } from 'node:cluster'
import { WarrenError } from '../errors.js'
import type { Logger } from '../log.js'
import { Channel } from './channel.js'

/** A worker that dies is started again, at most this often per window; past that it stays down. */
const MAX_RESTARTS = 10
const RESTART_WINDOW_MS = 60_000
/** A worker asked to stop that has not within this is killed. */
const STOP_WAIT_MS = 5000

export interface WorkerGroupSpec<L> {
  /** What a worker is called in logs and errors ("proxy worker"). */
  name: string
  /** The worker's main module. */
  exec: string
  count: number
  log: Logger
  /**
   * A worker said it is ready: set up what it may ask of the primary and
   * start it; `listening` resolves with where it listens, `detach` runs
   * when it exits.
   */
  attach(channel: Channel, workerId: number): { listening: Promise<L>; detach: () => void }
}

/**
 * A worker running `exec`. The settings are made right before each fork:
 * the edge's and the node proxy's workers can share one primary (the
 * all-in-one), and setupPrimary applies to later forks only.
 */
function forkWorker(exec: string): Worker {
  cluster.setupPrimary({ exec, args: [], serialization: 'advanced' })
  return cluster.fork()
}

interface Live {
  worker: Worker
  channel: Channel
  exited: Promise<void>
}

/**
 * The primary's side of a group of node:cluster workers on one shared port
 * (the primary accepts each connection and hands it to the next worker in
 * turn): each talks to the primary over a Channel; one that dies is started
 * again (bounded); closing asks each to close and kills it if it does not.
 */
export class WorkerGroup<L> {
  private readonly live = new Set<Live>()
  private readonly restarts: number[] = []
  private closing = false

  constructor(private readonly spec: WorkerGroupSpec<L>) {}

  /** Starts the workers; resolves once all listen. A failed start stops those started. */
  async listen(): Promise<L[]> {
    try {
      return await Promise.all(Array.from({ length: this.spec.count }, () => this.start()))
    } catch (err) {
      await this.close()
      throw err
    }
  }

  /** The channels of the workers alive. */
  channels(): Channel[] {
    return [...this.live].map((w) => w.channel)
  }

  async close(): Promise<void> {
    this.closing = true
    await Promise.all([...this.live].map((w) => this.stop(w)))
  }

  private start(): Promise<L> {
    const { name, log } = this.spec
    const worker = forkWorker(this.spec.exec)
    // With a callback, a send on a closed IPC channel fails there instead of
    // as an 'error' event nobody handles (which would end the primary).
    const channel = new Channel((m) => worker.send(m, ignoreSendError))
    const me: Live = {
      worker,
      channel,
      exited: new Promise((resolve) => worker.once('exit', () => resolve())),
    }
    this.live.add(me)
    let detach = () => {}
    const listening = new Promise<L>((resolve, reject) => {
      channel.handle('ready', () => {
        const attached = this.spec.attach(channel, worker.id)
        detach = attached.detach
        attached.listening.then(resolve, reject)
      })
      // A worker that exits before it listens fails its start.
      void me.exited.then(() =>
        reject(new WarrenError('internal', `a ${name} exited before it listened`)),
      )
    })
    worker.on('message', (m) => channel.receive(m))
    // The IPC channel goes before the 'exit': notes of what changed on the
    // node (a warm sandbox removed at shutdown, say) stop here, not at exit.
    worker.once('disconnect', () => channel.close())
    worker.on('error', (err) => log.warn({ err, pid: worker.process.pid }, `${name} channel error`))
    worker.once('exit', (code, signal) => {
      this.live.delete(me)
      detach()
      channel.close()
      if (this.closing) return
      const now = Date.now()
      while (this.restarts.length && this.restarts[0]! < now - RESTART_WINDOW_MS)
        this.restarts.shift()
      if (this.restarts.length >= MAX_RESTARTS) {
        log.error({ code, signal }, `${name} died; restarted too often, not again`)
        return
      }
      this.restarts.push(now)
      log.warn({ code, signal, pid: worker.process.pid }, `${name} died; starting another`)
      this.start().catch((err: unknown) => log.error({ err }, `a new ${name} did not start`))
    })
    return listening
  }

  private async stop(w: Live): Promise<void> {
    const timer = setTimeout(() => w.worker.process.kill('SIGKILL'), STOP_WAIT_MS)
    timer.unref()
    w.channel.call('close').catch(() => w.worker.process.kill('SIGKILL'))
    await w.exited
    clearTimeout(timer)
  }
}

/**
 * A worker's channel to its primary, with what every worker does: it
 * closes (`close`, then exits) when asked, exits when the primary is gone,
 * and says it is ready once `setUp` registered its handlers.
 */
export function serveAsWorker(setUp: (primary: Channel) => { close(): Promise<void> }): void {
  const send = process.send?.bind(process)
  if (!send) throw new Error('a worker runs under its primary (node:cluster)')
  const primary = new Channel((m) => send(m, undefined, undefined, ignoreSendError))
  const worker = setUp(primary)
  primary.handle('close', async () => {
    await worker.close()
    setImmediate(() => process.exit(0))
  })
  process.on('message', (m) => primary.receive(m))
  // The primary is gone (killed, say): so is this worker.
  process.on('disconnect', () => {
    primary.close()
    process.exit(0)
  })
  primary.note('ready')
}

/** A send that lost its channel: the 'disconnect' that follows closes the Channel. */
function ignoreSendError(): void {}
