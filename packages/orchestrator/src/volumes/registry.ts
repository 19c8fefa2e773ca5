import { isVolumeId, VOLUME_MAX_MB, VOLUME_MIN_MB, WarrenError } from '@warren/shared'
import type { VolumeRecord } from './record.js'

/** A volume bind-mounted into a sandbox at `path`. */
export interface VolumeMount {
  volumeId: string
  name: string
  path: string
}

/** What the registry asks of the host: the disks themselves. */
export interface VolumeHost {
  createVolume(record: VolumeRecord): Promise<void>
  deleteVolume(volumeId: string): Promise<void>
}

type State = 'creating' | 'ready' | 'deleting' | 'broken'

const BUSY: Record<State, string> = {
  creating: 'still being created',
  deleting: 'being deleted',
  ready: 'ready',
  broken: 'broken',
}

/**
 * The volumes of one node and which of its sandboxes mount them. Every
 * change is made synchronously before the host is touched (the event loop
 * makes each one atomic): a create claims its volumes, all of them ready,
 * in one step; a delete refuses while any sandbox — being created, running
 * or paused — holds a claim, and marks the volume `deleting` before it
 * removes it, so a create arriving meanwhile is refused.
 */
export class VolumeRegistry {
  private readonly volumes = new Map<string, { record: VolumeRecord; state: State }>()
  private readonly users = new Map<string, Set<string>>()

  constructor(private readonly host: VolumeHost) {}

  /** At node start: the volumes on disk, and the mounts of the sandboxes adopted. */
  load(
    volumes: { ready: VolumeRecord[]; broken: VolumeRecord[] },
    sandboxes: Array<{ sandboxId: string; volumeMounts: VolumeMount[] }>,
  ): void {
    for (const record of volumes.ready)
      this.volumes.set(record.volumeId, { record, state: 'ready' })
    for (const record of volumes.broken)
      this.volumes.set(record.volumeId, { record, state: 'broken' })
    for (const s of sandboxes) this.hold(s.sandboxId, s.volumeMounts)
  }

  async create(input: { volumeId: string; sizeMb: number; tokenSha256: string }) {
    if (!isVolumeId(input.volumeId))
      throw new WarrenError(
        'invalid_argument',
        `invalid volume id '${input.volumeId.slice(0, 64)}'`,
      )
    if (input.sizeMb < VOLUME_MIN_MB || input.sizeMb > VOLUME_MAX_MB)
      throw new WarrenError(
        'invalid_argument',
        `sizeMB must be ${VOLUME_MIN_MB} to ${VOLUME_MAX_MB}, not ${input.sizeMb}`,
      )
    if (!/^[0-9a-f]{64}$/.test(input.tokenSha256))
      throw new WarrenError('invalid_argument', 'tokenSha256 must be 64 hex digits')
    if (this.volumes.has(input.volumeId))
      throw new WarrenError('already_exists', `volume ${input.volumeId} already exists`)
    const record: VolumeRecord = { ...input, createdAt: new Date().toISOString() }
    this.volumes.set(record.volumeId, { record, state: 'creating' })
    try {
      await this.host.createVolume(record)
    } catch (err) {
      this.volumes.delete(record.volumeId)
      throw err
    }
    this.volumes.set(record.volumeId, { record, state: 'ready' })
    return record
  }

  async delete(volumeId: string): Promise<void> {
    const v = this.volumes.get(volumeId)
    if (!v) throw new WarrenError('not_found', `volume ${volumeId} not found`)
    if (v.state === 'creating' || v.state === 'deleting')
      throw new WarrenError('conflict', `volume ${volumeId} is ${BUSY[v.state]}`)
    const users = [...(this.users.get(volumeId) ?? [])]
    if (users.length)
      throw new WarrenError(
        'conflict',
        `volume ${volumeId} is mounted by sandbox ${users.slice(0, 5).join(', ')}`,
      )
    const before = v.state
    v.state = 'deleting'
    try {
      await this.host.deleteVolume(volumeId)
    } catch (err) {
      v.state = before
      throw err
    }
    this.volumes.delete(volumeId)
  }

  /** Claims the volumes a new sandbox mounts, all at once: each must be here and ready. */
  claim(sandboxId: string, mounts: VolumeMount[]): void {
    for (const m of mounts) {
      const v = this.volumes.get(m.volumeId)
      if (!v) throw new WarrenError('not_found', `volume '${m.name}' is not on this node`)
      if (v.state === 'broken')
        throw new WarrenError('unavailable', `volume '${m.name}' does not mount on this node`)
      if (v.state !== 'ready')
        throw new WarrenError('conflict', `volume '${m.name}' is ${BUSY[v.state]}`)
    }
    this.hold(sandboxId, mounts)
  }

  /** The sandbox no longer mounts these volumes (its create failed, or it was removed). */
  release(sandboxId: string, mounts: VolumeMount[]): void {
    for (const m of mounts) {
      const users = this.users.get(m.volumeId)
      users?.delete(sandboxId)
      if (users?.size === 0) this.users.delete(m.volumeId)
    }
  }

  /** A volume whose files may be served, or undefined. */
  ready(volumeId: string): VolumeRecord | undefined {
    const v = this.volumes.get(volumeId)
    return v?.state === 'ready' ? v.record : undefined
  }

  list(): VolumeRecord[] {
    return [...this.volumes.values()].map((v) => v.record)
  }

  private hold(sandboxId: string, mounts: VolumeMount[]): void {
    for (const m of mounts) {
      const users = this.users.get(m.volumeId) ?? new Set<string>()
      users.add(sandboxId)
      this.users.set(m.volumeId, users)
    }
  }
}
