import type { MessageInitShape } from '@bufbuild/protobuf'
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createRouterTransport,
  type Interceptor,
  type ServiceImpl,
  type Transport,
} from '@connectrpc/connect'
import {
  errorInterceptor,
  type NetworkConfig,
  networkConfigFromMessage,
  REQUEST_ID_HEADER,
  WarrenError,
} from '@warren/shared'
import {
  OrchestratorService,
  PausedKind,
  type SandboxSchema,
  SandboxState,
} from '@warren/shared/gen/warren/orchestrator/v1/orchestrator_pb'

export type NodeMethod = keyof ServiceImpl<typeof OrchestratorService>

/** What the stand-in holds for one sandbox. */
export interface HeldSandbox {
  sandboxId: string
  templateId: string
  state: 'running' | 'paused'
  pausedKind: PausedKind
  address: string
  network: NetworkConfig
  /** Ids of the volumes it mounts. */
  volumes: string[]
  isolation?: string
}

/** A call held at a gate: the API is mid-operation until the test lets it go on. */
export interface Gate {
  /** Resolves once a call has reached the gate. */
  entered: Promise<void>
  /** The held call goes on as the node would answer it. */
  release(): void
  /** The held call fails with `err`. */
  fail(err: Error): void
}

/** What a node unreachable over the network looks like to the API's client. */
export function unreachable(): ConnectError {
  return new ConnectError('connect ECONNREFUSED 127.0.0.1:5008', Code.Unavailable)
}

type Step = () => Promise<void>

/**
 * An orchestrator node in memory, behind Connect's router transport: the
 * API drives it through the same client, error contract and wire encoding
 * as a real node. Sandboxes live in a Map; every call is recorded; the next
 * call of a method can be held at a gate or failed, so that races and
 * rollbacks happen at a chosen point.
 */
export class StandInNode {
  readonly sandboxes = new Map<string, HeldSandbox>()
  /** Volumes on this node: their size, by id. */
  readonly volumes = new Map<string, number>()
  readonly calls: Array<{ method: NodeMethod; sandboxId: string }> = []
  /** What it says it offers (NodeInfo); a create of another isolation is refused. */
  isolations: string[] = ['runc']
  /** The `x-request-id` header of every call, as it arrived (undefined: none). */
  readonly requestIds: Array<{ method: string; requestId: string | undefined }> = []
  /** Sandboxes a kill removed, in order, each when it was removed (ms since the epoch). */
  readonly removed: Array<{ sandboxId: string; at: number }> = []
  readonly transport: Transport
  private readonly steps = new Map<NodeMethod, Step[]>()
  private addresses = 0
  /** The node's memory: 512 MiB per sandbox is allocated from it (16 fit by default). */
  memoryMbTotal = 8192

  constructor(
    readonly nodeId = 'node-1',
    readonly templates: string[] = ['base'],
  ) {
    this.transport = createRouterTransport((r) => this.routes(r), {
      router: { interceptors: [this.recordRequestIds(), errorInterceptor(() => {})] },
    })
  }

  /** Adds the node's service to a Connect router (to serve it over HTTP as well). */
  private recordRequestIds(): Interceptor {
    return (next) => (req) => {
      this.requestIds.push({
        method: req.method.localName,
        requestId: req.header.get(REQUEST_ID_HEADER) ?? undefined,
      })
      return next(req)
    }
  }

  routes(router: ConnectRouter): ConnectRouter {
    return router.service(OrchestratorService, this.impl())
  }

  /** The next call of `method` waits at the returned gate. */
  hold(method: NodeMethod): Gate {
    let entered!: () => void
    let go!: (err?: Error) => void
    const gate: Gate = {
      entered: new Promise<void>((resolve) => (entered = resolve)),
      release: () => go(),
      fail: (err) => go(err),
    }
    const outcome = new Promise<Error | undefined>((resolve) => (go = resolve))
    this.enqueue(method, async () => {
      entered()
      const err = await outcome
      if (err) throw err
    })
    return gate
  }

  /** The next `times` calls of `method` fail with `err` before the node does anything. */
  failNext(method: NodeMethod, err: Error, times = 1): void {
    for (let i = 0; i < times; i++)
      this.enqueue(method, async () => {
        throw err
      })
  }

  /** Calls of these methods (all but capacity polling by default). */
  callsOf(...methods: NodeMethod[]): Array<{ method: NodeMethod; sandboxId: string }> {
    return this.calls.filter((c) =>
      methods.length ? methods.includes(c.method) : c.method !== 'nodeInfo',
    )
  }

  /** Puts a sandbox on the node directly, as if it had been created there. */
  put(s: Partial<HeldSandbox> & { sandboxId: string }): void {
    this.sandboxes.set(s.sandboxId, {
      templateId: 'base',
      state: 'running',
      pausedKind: PausedKind.UNSPECIFIED,
      address: this.nextAddress(),
      network: {},
      volumes: [],
      ...s,
    })
  }

  private enqueue(method: NodeMethod, step: Step): void {
    const queue = this.steps.get(method) ?? []
    queue.push(step)
    this.steps.set(method, queue)
  }

  /** Records the call and runs the step queued for it, if any. */
  private async enter(method: NodeMethod, sandboxId = ''): Promise<void> {
    this.calls.push({ method, sandboxId })
    await this.steps.get(method)?.shift()?.()
  }

  private nextAddress(): string {
    this.addresses++
    return `10.11.${this.addresses >> 6}.${((this.addresses & 63) << 2) | 2}`
  }

  private find(sandboxId: string, state?: HeldSandbox['state']): HeldSandbox {
    const s = this.sandboxes.get(sandboxId)
    if (!s) throw new WarrenError('not_found', `sandbox ${sandboxId} not found`)
    if (state && s.state !== state)
      throw new WarrenError('conflict', `sandbox ${sandboxId} is ${s.state}, not ${state}`)
    return s
  }

  private view(s: HeldSandbox): MessageInitShape<typeof SandboxSchema> {
    return {
      sandboxId: s.sandboxId,
      templateId: s.templateId,
      state: s.state === 'running' ? SandboxState.RUNNING : SandboxState.PAUSED,
      address: s.state === 'running' ? s.address : '',
      cpuCount: 2,
      memoryMb: 512,
      diskSizeMb: 1024,
      envdVersion: '0.2.0',
      nodeId: this.nodeId,
      pausedKind: s.pausedKind,
      isolation: s.isolation ?? 'runc',
    }
  }

  private impl(): ServiceImpl<typeof OrchestratorService> {
    return {
      create: async (req) => {
        await this.enter('create', req.sandboxId)
        if (!this.templates.includes(req.templateId))
          throw new WarrenError('not_found', `template '${req.templateId}' not found`)
        if (this.sandboxes.has(req.sandboxId))
          throw new WarrenError('already_exists', `sandbox ${req.sandboxId} exists`)
        const isolation = req.isolation ?? 'runc'
        if (!this.isolations.includes(isolation))
          throw new WarrenError('unavailable', `this node does not offer ${isolation} isolation`)
        const volumes = req.volumeMounts.map((m) => m.volumeId)
        for (const v of volumes)
          if (!this.volumes.has(v)) throw new WarrenError('not_found', `volume ${v} not found`)
        this.put({
          sandboxId: req.sandboxId,
          templateId: req.templateId,
          network: networkConfigFromMessage(req.network),
          volumes,
          isolation,
        })
        return { sandbox: this.view(this.find(req.sandboxId)) }
      },
      kill: async (req) => {
        await this.enter('kill', req.sandboxId)
        this.find(req.sandboxId)
        this.sandboxes.delete(req.sandboxId)
        this.removed.push({ sandboxId: req.sandboxId, at: Date.now() })
        return {}
      },
      get: async (req) => {
        await this.enter('get', req.sandboxId)
        return { sandbox: this.view(this.find(req.sandboxId)) }
      },
      pause: async (req) => {
        await this.enter('pause', req.sandboxId)
        const s = this.find(req.sandboxId, 'running')
        s.state = 'paused'
        s.pausedKind = req.memory ? PausedKind.MEMORY : PausedKind.FILES
        return { sandbox: this.view(s) }
      },
      resume: async (req) => {
        await this.enter('resume', req.sandboxId)
        const s = this.find(req.sandboxId, 'paused')
        const hot = s.pausedKind === PausedKind.MEMORY && req.memory !== false
        if (!hot) s.address = this.nextAddress()
        s.state = 'running'
        s.pausedKind = PausedKind.UNSPECIFIED
        return {
          sandbox: this.view(s),
          resumedFrom: hot ? PausedKind.MEMORY : PausedKind.FILES,
        }
      },
      updateNetwork: async (req) => {
        await this.enter('updateNetwork', req.sandboxId)
        const s = this.find(req.sandboxId, 'running')
        s.network = networkConfigFromMessage(req.network)
        return { sandbox: this.view(s) }
      },
      list: async () => {
        await this.enter('list')
        return { sandboxes: [...this.sandboxes.values()].map((s) => this.view(s)) }
      },
      nodeInfo: async () => {
        await this.enter('nodeInfo')
        return {
          status: {
            nodeId: this.nodeId,
            cpuCount: 4,
            memoryMbTotal: BigInt(this.memoryMbTotal),
            memoryMbAllocated: BigInt(512 * this.sandboxes.size),
            sandboxes: this.sandboxes.size,
            addressesFree: 100,
            // Never dialled: the API only passes it on to proxies.
            proxyUrl: `http://${this.nodeId}.invalid:5007`,
            templates: ['base'],
            isolations: this.isolations,
          },
        }
      },
      // Builds need real sandboxes: the end-to-end suites (tests/templates) cover them.
      buildTemplate: () => {
        throw new WarrenError('unavailable', 'the stand-in node builds no templates')
      },
      snapshot: async (req) => {
        await this.enter('snapshot', req.sandboxId)
        this.find(req.sandboxId)
        this.templates.push(req.templateId)
        return { template: { templateId: req.templateId, buildId: 'b-snapshot' } }
      },
      deleteTemplate: async (req) => {
        if (!this.templates.includes(req.templateId))
          throw new WarrenError('not_found', `template '${req.templateId}' not found`)
        this.templates.splice(this.templates.indexOf(req.templateId), 1)
        return { layersRemoved: 0 }
      },
      listTemplates: async () => {
        await this.enter('listTemplates')
        return {
          templates: this.templates.map((templateId) => ({
            templateId,
            buildId: `${templateId}-1`,
            cpuCount: 2,
            memoryMb: 512,
            diskSizeMb: 1024,
            envdVersion: '0.2.0',
          })),
        }
      },
      getMetrics: async (req) => {
        await this.enter('getMetrics', req.sandboxId)
        this.find(req.sandboxId, 'running')
        return { cpuCount: 2, cpuUsedPct: 1.5, memUsed: 1n << 20n, memTotal: 512n << 20n }
      },
      createVolume: async (req) => {
        await this.enter('createVolume', req.volumeId)
        if (this.volumes.has(req.volumeId))
          throw new WarrenError('already_exists', `volume ${req.volumeId} exists`)
        this.volumes.set(req.volumeId, req.sizeMb)
        return {}
      },
      deleteVolume: async (req) => {
        await this.enter('deleteVolume', req.volumeId)
        if (!this.volumes.has(req.volumeId))
          throw new WarrenError('not_found', `volume ${req.volumeId} not found`)
        const user = [...this.sandboxes.values()].find((s) => s.volumes.includes(req.volumeId))
        if (user)
          throw new WarrenError(
            'conflict',
            `volume ${req.volumeId} is mounted by ${user.sandboxId}`,
          )
        this.volumes.delete(req.volumeId)
        return {}
      },
      getLogs: async (req) => {
        await this.enter('getLogs', req.sandboxId)
        this.find(req.sandboxId)
        return { lines: [{ line: 'envd started', level: 'info', message: 'envd started' }] }
      },
    }
  }
}
