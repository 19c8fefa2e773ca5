import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  CLUSTER_SECRET_HEADER,
  createForwarder,
  describeContentIssue,
  type ForwardTarget,
  volumeContentOp,
  volumeContentQueries,
  volumePathSegments,
  WarrenError,
} from '@warren/shared'
import type { Placement } from '../placement/nodes.js'
import type { Db } from '../store/db.js'
import { getVolume } from '../store/volumes.js'

/** What the API's content route hands on: the request, the node that has the files. */
export interface ContentRequest {
  method: string
  volumeId: string
  segment: string
  query: Record<string, string>
  authorization: string | undefined
}

/**
 * E2B's volume content API at the edge. The volume token (a bearer token)
 * is checked here against the volume the path names: missing or wrong →
 * 401, unknown volume → 404; the query is checked against the operation's
 * schema (400), then the request is streamed, body and answer, to the
 * node that has the volume (its RPC port serves the same paths and checks
 * the token again).
 */
export class VolumeContentProxy {
  private readonly targets = new WeakMap<IncomingMessage, ForwardTarget>()
  private readonly forwarder = createForwarder(async (req) => {
    const target = this.targets.get(req)
    return target ? { target } : { error: { status: 500, message: 'internal error' } }
  })

  constructor(
    private readonly db: Db,
    private readonly placement: Placement,
    /** The node's port wants the cluster secret, and over https its certificate is the cluster CA's. */
    private readonly cluster: { secret: string; ca?: string | undefined } = { secret: '' },
  ) {}

  /** Checks a request; returns where it goes. Throws the error to answer. */
  async authorize(r: ContentRequest): Promise<ForwardTarget> {
    const op = volumeContentOp(r.method, r.segment)
    if (!op) throw new WarrenError('not_found', `no route ${r.method} ${r.segment}`)
    const token = /^Bearer (\S+)$/.exec(r.authorization ?? '')?.[1]
    if (!token)
      throw new WarrenError('unauthenticated', 'missing volume token (Authorization: Bearer)')
    const volume = await getVolume(this.db, r.volumeId)
    if (volume?.state !== 'ready')
      throw new WarrenError('not_found', `volume ${r.volumeId} not found`)
    const given = Buffer.from(token)
    const want = Buffer.from(volume.token)
    if (given.length !== want.length || !timingSafeEqual(given, want))
      throw new WarrenError('unauthenticated', 'invalid token for this volume')
    const q = volumeContentQueries[op].safeParse(r.query)
    if (!q.success) throw new WarrenError('invalid_argument', describeContentIssue(q.error))
    volumePathSegments(q.data.path)
    const node = this.placement.node(volume.nodeId)
    if (!node.url)
      throw new WarrenError('unavailable', `node ${volume.nodeId} serves no volume content`)
    const url = new URL(node.url)
    const host = url.hostname.replace(/^\[|\]$/g, '')
    const https = url.protocol === 'https:'
    return {
      host,
      port: Number(url.port || (https ? 443 : 80)),
      removeHeaders: ['x-api-key', 'cookie', CLUSTER_SECRET_HEADER],
      ...(this.cluster.secret
        ? { setHeaders: { [CLUSTER_SECRET_HEADER]: this.cluster.secret } }
        : {}),
      ...(https ? { tls: { ca: this.cluster.ca, servername: host } } : {}),
      unreachable: () => ({ status: 503, message: `node ${volume.nodeId} is unreachable` }),
    }
  }

  /** Streams an authorized request to its node; the answer goes straight to `res`. */
  forward(req: IncomingMessage, res: ServerResponse, target: ForwardTarget): void {
    this.targets.set(req, target)
    void this.forwarder.onRequest(req, res)
  }

  close(): Promise<void> {
    return this.forwarder.close()
  }
}
