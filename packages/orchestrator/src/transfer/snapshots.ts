import { join } from 'node:path'
import { type BundleManifest, type Logger, parseTemplateId, WarrenError } from '@warren/shared'
import type { NodeHost } from '../host/node-host.js'
import type { SandboxRecord } from '../sandboxes/record.js'
import { BundleStore } from './bundle-store.js'
import {
  type BundleSource,
  fetchBundle,
  type PeerAuth,
  peerSource,
  storeSource,
} from './sources.js'

/**
 * Where a node's paused sandboxes' snapshots live beyond its own sandbox
 * directories, and how a node gets one it lacks:
 *
 * - `<data>/bundles`: what this node packed for peers (a moving sandbox's
 *   layer, served at `/bundles/…` on its RPC port) and what it downloads
 *   before unpacking; a sandbox's entries go when it is killed here or has
 *   been unpacked.
 * - the shared snapshot store (WARREN_SNAPSHOT_STORE, a directory every
 *   node mounts, e.g. NFS): each pause publishes the sandbox's snapshot
 *   there, so it outlives its node; a resume or a kill by its publisher
 *   removes it.
 *
 * A sandbox arriving from elsewhere is taken from the shared store first,
 * then from its origin node.
 */
export class NodeSnapshots {
  readonly local: BundleStore
  readonly shared: BundleStore | undefined
  private peer: PeerAuth | undefined

  constructor(
    private readonly host: NodeHost,
    private readonly log: Logger,
    opts: { dataDir: string; snapshotStore?: string | undefined; nodeId: string },
  ) {
    this.local = new BundleStore(join(opts.dataDir, 'bundles'))
    this.shared = opts.snapshotStore ? new BundleStore(opts.snapshotStore) : undefined
    this.nodeId = opts.nodeId
  }

  private readonly nodeId: string

  /** How this node authenticates to its peers (set once its ports serve, see cluster/serve). */
  usePeerAuth(auth: PeerAuth): void {
    this.peer = auth
  }

  /**
   * Publishes a paused sandbox's snapshot to the shared store (none: nothing
   * to do). A failure is logged, not thrown: the pause stands, and the
   * snapshot is then on this node only.
   */
  async publish(record: SandboxRecord): Promise<void> {
    if (!this.shared) return
    try {
      const m = await this.host.packSnapshot(record, this.shared)
      this.log.info({ sandboxId: record.sandboxId, files: m.files }, 'snapshot published')
    } catch (err) {
      this.log.error(
        { err, sandboxId: record.sandboxId },
        'could not publish the snapshot to the shared store; it stays on this node only',
      )
    }
  }

  /** Packs a paused sandbox for a peer that asked (caller holds its lock). */
  export(record: SandboxRecord): Promise<BundleManifest> {
    return this.host.packSnapshot(record, this.local)
  }

  /**
   * Fetches a sandbox's snapshot (shared store, then its origin's RPC URL)
   * into the local store, every file checked against its hash, and unpacks
   * it as a files-only sandbox of this node. The downloaded copy goes
   * afterwards, whether or not the unpack worked.
   */
  async bringIn(sandboxId: string, originUrl: string | undefined): Promise<SandboxRecord> {
    const sources: BundleSource[] = []
    if (this.shared) sources.push(storeSource(this.shared, 'the shared snapshot store'))
    if (originUrl && this.peer)
      sources.push(peerSource(originUrl, this.peer, `node at ${originUrl}`))
    const { manifest, from } = await fetchBundle(sources, 'sandbox', sandboxId, this.local)
    try {
      const record = await this.host.installSnapshot(manifest, this.local)
      this.log.info({ sandboxId, from }, 'snapshot fetched and unpacked')
      return record
    } finally {
      this.local.removeBundle(manifest, 0)
    }
  }

  /**
   * A template build (current unless named) packed for a peer with the layers it `need`s. Kept
   * (a manifest in the local store) for peers still downloading; what was
   * packed more than ten minutes ago goes first.
   */
  async exportTemplate(
    templateId: string,
    buildId: string | undefined,
    need: string[],
  ): Promise<BundleManifest> {
    // Layers are immutable: no lock; a concurrent delete fails the asker's unpack or hash check.
    const meta = this.host.template(parseTemplateId(templateId), buildId)
    this.local.expire('template', 10 * 60_000)
    const manifest = await this.host.packTemplate(meta, new Set(need), this.local)
    await this.local.writeManifest(manifest)
    return manifest
  }

  /**
   * A template build this node lacks (the current one when `buildId` is
   * unset), fetched from a peer that has it: the metadata and the layers
   * this node does not hold, each checked by its hash. Nothing to do when
   * the node has it.
   */
  async ensureTemplate(
    templateId: string,
    buildId: string | undefined,
    sourceUrl: string | undefined,
  ): Promise<void> {
    if (this.hasTemplate(templateId, buildId) || !sourceUrl || !this.peer) return
    const peer = peerSource(sourceUrl, this.peer, `node at ${sourceUrl}`)
    // First what the build is made of, then only the layers this node lacks.
    const listed = await peer.manifest(
      'template',
      buildId ? `${templateId}/${buildId}` : templateId,
    )
    if (!listed)
      throw new WarrenError('not_found', `template '${templateId}' is not on ${peer.name}`)
    const layers = ((listed.metadata.layers ?? []) as Array<{ path: string }>).map((l) => l.path)
    const held = new Set(this.host.layersHeld(layers))
    const need = layers.filter((l) => !held.has(l))
    const { manifest } = await fetchBundle([peer], 'template', listed.id, this.local, need)
    try {
      await this.host.installTemplate(manifest, this.local)
      this.log.info({ template: manifest.id, files: manifest.files.length }, 'template fetched')
    } finally {
      this.local.removeBundle(manifest, 0)
    }
  }

  private hasTemplate(templateId: string, buildId: string | undefined): boolean {
    try {
      this.host.template(templateId, buildId)
      return true
    } catch {
      return false
    }
  }

  /** A resume made the published snapshot stale: it goes from the shared store. */
  resumed(sandboxId: string): void {
    if (!this.shared) return
    const shared = this.shared
    try {
      const m = shared.readManifest('sandbox', sandboxId)
      if (m) shared.removeBundle(m)
    } catch (err) {
      this.log.warn({ err, sandboxId }, 'could not remove a stale snapshot from the shared store')
    }
  }

  /**
   * The sandbox was killed here: its packed copy goes, and its published
   * snapshot if this node published it (a copy left on a node it moved away
   * from must not remove the snapshot its new node published).
   */
  killed(sandboxId: string): void {
    try {
      const m = this.local.readManifest('sandbox', sandboxId)
      if (m) this.local.removeBundle(m, 0)
      const s = this.shared?.readManifest('sandbox', sandboxId)
      if (s && s.origin === this.nodeId) this.shared?.removeBundle(s)
    } catch (err) {
      this.log.warn({ err, sandboxId }, 'could not remove a killed sandbox snapshot')
    }
  }
}
