import cluster, { type Worker } from 'node:cluster'
import { fileURLToPath } from 'node:url'
import type { ConnectSlot, LocalNode, Logger, ProxyConfig, WakeCredentials } from '@warren/shared'
import { WarrenError } from '@warren/shared'
import { RouteState } from '@warren/shared/gen/warren/api/v1/proxy_pb'
import { AggregatorRegistry } from 'prom-client'
import type { RouteCatalog } from '../catalog/route-catalog.js'
import type { KeepaliveReporter } from '../keepalive/reporter.js'
import type { EdgeMetrics } from '../metrics/edge-metrics.js'
import type { Resumer } from '../resume/resumer.js'
import { edgeCertificates } from '../tls/certificates.js'
import { changeToWire, routeToWire, type WireRoute } from './catalog-copy.js'
import { Channel } from './channel.js'
import type { WireVerdict } from './remote-node.js'
import type { MetricsJson, WorkerInit, WorkerListening } from './worker.js'

const WORKER_MAIN = fileURLToPath(new URL('./worker.js', import.meta.url))
/** A worker that dies is started again, at most this often per window; past that it stays down. */
const MAX_RESTARTS = 10
const RESTART_WINDOW_MS = 60_000
/** A worker asked to stop that has not within this is killed. */
const STOP_WAIT_MS = 5000

export interface ProxyWorkers {
  /** Starts the workers; resolves once all listen, with the first's URL and the TLS files. */
  listen(): Promise<WorkerListening>
  /** The workers' process ids (those alive). */
  pids(): number[]
  close(): Promise<void>
}

interface Live {
  worker: Worker
  channel: Channel
  exited: Promise<void>
}

/**
 * The primary of the edge's worker processes (node:cluster: the primary
 * accepts each connection and hands it to the next worker in turn). The
 * workers parse and forward; what must happen once stays here: the one
 * catalog stream (each change is sent to every worker, in order), keepalive
 * reports (a worker's reports pass through this reporter, so there is at
 * most one per sandbox per interval across all of them), resumes (one
 * in-flight resume per sandbox and credentials, whichever worker asks),
 * route asks and confirmations, and the local node of an all-in-one (its
 * state and connect windows: see remote-node.ts). A worker that dies is
 * started again (bounded); its places in connect windows are freed.
 */
export function startProxyWorkers(
  cfg: ProxyConfig & { domain: string },
  log: Logger,
  clusterCreds: { secret: string; ca?: string | undefined },
  parts: {
    catalog: RouteCatalog
    resumer: Resumer
    keepalive: KeepaliveReporter
    metrics: EdgeMetrics
    localNodes?: Map<string, LocalNode> | undefined
  },
): ProxyWorkers {
  const { catalog, resumer, keepalive, metrics } = parts
  const localNodes = parts.localNodes ?? new Map<string, LocalNode>()
  const live = new Set<Live>()
  const slots = new Map<number, { slot: ConnectSlot; owner: Live }>()
  let nextSlot = 0
  const restarts: number[] = []
  let closing = false
  let tlsFiles: { caCertPath?: string; caBundlePath?: string } = {}

  function localNode(nodeUrl: string): LocalNode {
    const node = localNodes.get(nodeUrl)
    if (!node) throw new WarrenError('not_found', `no local node at ${nodeUrl}`)
    return node
  }

  function nodeVerdict(
    nodeUrl: string,
    sandboxId: string,
    port: number,
    clientIp: string,
  ): WireVerdict {
    const v = localNode(nodeUrl).verdict(sandboxId, port, clientIp)
    if ('error' in v) return v
    const { window, ...route } = v.route
    return { route: { ...route, window: { id: window.id, opts: window.opts } } }
  }

  async function windowAcquire(
    owner: Live,
    nodeUrl: string,
    sandboxId: string,
    port: number,
    retry: boolean,
  ): Promise<number> {
    const slot = await localNode(nodeUrl).window(sandboxId, port).acquire(retry)
    if (!live.has(owner)) {
      slot.free()
      throw new WarrenError('unavailable', 'the worker is gone')
    }
    const id = ++nextSlot
    slots.set(id, { slot, owner })
    return id
  }

  function slotEnd(slotId: number, how: 'answered' | 'dropped' | 'free'): void {
    const s = slots.get(slotId)
    if (!s) return
    slots.delete(slotId)
    s.slot[how]()
  }

  async function renderMetrics(): Promise<string> {
    const all: MetricsJson[] = [await metrics.registry.getMetricsAsJSON()]
    for (const w of live) all.push(await w.channel.call<MetricsJson>('metricsJson').catch(() => []))
    return AggregatorRegistry.aggregate(all).metrics()
  }

  function start(): Promise<WorkerListening> {
    const worker = cluster.fork()
    const channel = new Channel((m) => worker.send(m))
    const me: Live = {
      worker,
      channel,
      exited: new Promise((resolve) => worker.once('exit', () => resolve())),
    }
    live.add(me)
    let unsubscribe = () => {}
    const listening = new Promise<WorkerListening>((resolve, reject) => {
      channel
        .handle('ready', () => {
          // The state and then every change after it, in order on one channel.
          const { ready, following, routes } = catalog.current()
          const unsubscribers = [
            catalog.onChange((c) => channel.note('catalog', changeToWire(c))),
            ...[...localNodes].map(([url, node]) =>
              node.onChange((id) => channel.note('nodeChanged', url, id)),
            ),
          ]
          unsubscribe = () => {
            for (const u of unsubscribers) u()
          }
          const init: WorkerInit = {
            worker: worker.id,
            cfg,
            cluster: clusterCreds,
            localNodes: [...localNodes.keys()],
            catalog: { ready, following, routes: routes.map(routeToWire) },
          }
          channel.call<WorkerListening>('init', init).then(resolve, reject)
        })
        .handle('lookup', async (id: string): Promise<WireRoute | null> => {
          const r = await catalog.lookup(id)
          return r ? routeToWire(r) : null
        })
        .handle('confirm', async (id: string): Promise<WireRoute | null> => {
          const r = await catalog.confirm(id)
          return r ? routeToWire(r) : null
        })
        .handle('caughtUp', () => undefined)
        .handle('noteMiss', (id: string) => catalog.noteMiss(id))
        .handle('resume', async (id: string, creds: WakeCredentials) => {
          // The worker's copy may not hold yet what a resume that just ended
          // brought (its change is on the way): the sandbox serves, so no
          // second ResumeSandbox. The worker judged the credentials already.
          const known = await catalog.lookup(id)
          if (known?.state === RouteState.RUNNING) return routeToWire(known)
          return routeToWire(await resumer.resume(id, creds))
        })
        .handle('touch', (id: string) => keepalive.touch(id))
        .handle('metrics', () => renderMetrics())
        .handle('nodeVerdict', nodeVerdict)
        .handle('windowAcquire', (url: string, id: string, port: number, retry: boolean) =>
          windowAcquire(me, url, id, port, retry),
        )
        .handle('slotEnd', slotEnd)
      // A worker that exits before it listens fails its start.
      void me.exited.then(() =>
        reject(new WarrenError('internal', 'a proxy worker exited before it listened')),
      )
    })
    worker.on('message', (m) => channel.receive(m))
    worker.once('exit', (code, signal) => {
      live.delete(me)
      unsubscribe()
      channel.close()
      for (const [id, s] of slots)
        if (s.owner === me) {
          slots.delete(id)
          s.slot.free()
        }
      if (closing) return
      const now = Date.now()
      while (restarts.length && restarts[0]! < now - RESTART_WINDOW_MS) restarts.shift()
      if (restarts.length >= MAX_RESTARTS) {
        log.error({ code, signal }, 'proxy worker died; restarted too often, not again')
        return
      }
      restarts.push(now)
      log.warn({ code, signal, pid: worker.process.pid }, 'proxy worker died; starting another')
      start().catch((err: unknown) => log.error({ err }, 'a new proxy worker did not start'))
    })
    return listening
  }

  async function stop(w: Live): Promise<void> {
    const timer = setTimeout(() => w.worker.process.kill('SIGKILL'), STOP_WAIT_MS)
    timer.unref()
    w.channel.call('close').catch(() => w.worker.process.kill('SIGKILL'))
    await w.exited
    clearTimeout(timer)
  }

  return {
    async listen() {
      // Warren's CA is made here, once, before workers that would all make it.
      const { certificates } = await edgeCertificates(cfg)
      tlsFiles = {
        ...(certificates.caCertPath ? { caCertPath: certificates.caCertPath } : {}),
        ...(certificates.caBundlePath ? { caBundlePath: certificates.caBundlePath } : {}),
      }
      cluster.setupPrimary({
        exec: WORKER_MAIN,
        args: [],
        serialization: 'advanced',
      })
      try {
        const all = await Promise.all(Array.from({ length: cfg.workers }, () => start()))
        return { ...all[0]!, ...tlsFiles }
      } catch (err) {
        closing = true
        await Promise.all([...live].map(stop))
        throw err
      }
    },
    pids() {
      return [...live].flatMap((w) => (w.worker.process.pid ? [w.worker.process.pid] : []))
    },
    async close() {
      closing = true
      await Promise.all([...live].map(stop))
    },
  }
}
