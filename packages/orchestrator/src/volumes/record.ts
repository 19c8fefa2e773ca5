import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'

/** What the node keeps of a volume across its restarts (`volume.json`, root's alone). */
export const volumeRecordSchema = z.object({
  volumeId: z.string(),
  sizeMb: z.number().int(),
  /** sha256 of the content token: enough to check one, useless to present. */
  tokenSha256: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string(),
})

export type VolumeRecord = z.infer<typeof volumeRecordSchema>

/**
 * Files of one volume under <dataDir>/volumes/<id>/: its record, its disk
 * image, and `root`, where the image is mounted on the host (the volume's
 * files; what sandboxes bind-mount). The directories are traversable by the
 * sandboxes' mapped root (runc reaches `root` as that uid), listable by
 * root only.
 */
export function volumePaths(dataDir: string, volumeId: string) {
  const dir = join(dataDir, 'volumes', volumeId)
  return {
    dir,
    record: join(dir, 'volume.json'),
    image: join(dir, 'volume.img'),
    root: join(dir, 'root'),
  }
}

export function volumesDir(dataDir: string): string {
  return join(dataDir, 'volumes')
}

export function writeVolumeRecord(dataDir: string, record: VolumeRecord): void {
  const path = volumePaths(dataDir, record.volumeId).record
  writeFileSync(`${path}.tmp`, JSON.stringify(record), { mode: 0o600 })
  renameSync(`${path}.tmp`, path)
}

export function readVolumeRecord(dataDir: string, volumeId: string): VolumeRecord | undefined {
  const path = volumePaths(dataDir, volumeId).record
  if (!existsSync(path)) return undefined
  try {
    const parsed = volumeRecordSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}
