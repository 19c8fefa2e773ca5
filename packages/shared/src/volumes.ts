import { createHash } from 'node:crypto'
import { z } from 'zod'
import { WarrenError } from './errors.js'
import { isSandboxId, newSandboxId } from './ids.js'

/**
 * Volumes: named, persistent, size-limited directories that sandboxes mount.
 * What the API and the node both need to agree on lives here: ids, names,
 * mount paths and the sha256 of the content token (the node keeps only that).
 */

/** Volume ids have the sandbox ids' form: 20 lowercase alphanumerics. */
export const newVolumeId = newSandboxId
export const isVolumeId = isSandboxId

/** E2B: "Volume names can only contain letters, numbers, and hyphens." */
export const VOLUME_NAME = /^[A-Za-z0-9-]{1,63}$/

export const volumeNameSchema = z
  .string()
  .regex(VOLUME_NAME, 'only letters, digits and hyphens, 1 to 63 of them')

/** Size limits of a volume's disk, in MB: ext4 needs a few MB; 1 TiB is plenty for one directory. */
export const VOLUME_MIN_MB = 16
export const VOLUME_MAX_MB = 1024 * 1024

/** A mount as the create body names it (E2B's `SandboxVolumeMount`). */
export const volumeMountSchema = z.strictObject({
  name: z.string().min(1).max(63),
  path: z.string().min(1).max(4096),
})

export type VolumeMountRequest = z.infer<typeof volumeMountSchema>

/**
 * Where a volume may not go: the sandbox's kernel interfaces and Warren's
 * own read-only mounts (tini, Node, envd), which a volume would hide.
 */
const RESERVED = ['/proc', '/sys', '/dev', '/opt/warren']

/**
 * A mount path as runc will use it: absolute, canonical (no `.`, `..`,
 * empty segments or trailing slash), not the root and not under a reserved
 * tree. Returns it unchanged or throws invalid_argument.
 */
export function parseMountPath(path: string): string {
  const bad = (why: string) =>
    new WarrenError('invalid_argument', `volumeMounts: path '${path.slice(0, 200)}' ${why}`)
  if (!path.startsWith('/')) throw bad('must be absolute')
  if (path === '/') throw bad('cannot be the root')
  if (path.includes('\0')) throw bad('contains a NUL byte')
  if (Buffer.byteLength(path) > 4096) throw bad('is too long')
  const segments = path.slice(1).split('/')
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..') throw bad("must be canonical (no '.', '..', '//')")
    if (Buffer.byteLength(s) > 255) throw bad('has a name longer than 255 bytes')
  }
  for (const r of RESERVED) {
    if (path === r || path.startsWith(`${r}/`)) throw bad(`is under ${r}, which Warren reserves`)
  }
  return path
}

/**
 * The create body's mounts, checked as a whole: every path valid, each
 * volume and each path once, and no path inside another (runc would make
 * the inner mount point inside the outer volume).
 */
export function checkVolumeMounts<T extends VolumeMountRequest>(mounts: T[]): T[] {
  if (mounts.length > 16) throw new WarrenError('invalid_argument', 'volumeMounts: at most 16')
  const names = new Set<string>()
  for (const m of mounts) {
    parseMountPath(m.path)
    if (names.has(m.name))
      throw new WarrenError('invalid_argument', `volumeMounts: volume '${m.name}' is named twice`)
    names.add(m.name)
  }
  for (const a of mounts) {
    for (const b of mounts) {
      if (a === b) continue
      if (a.path === b.path)
        throw new WarrenError('invalid_argument', `volumeMounts: path '${a.path}' is used twice`)
      if (b.path.startsWith(`${a.path}/`))
        throw new WarrenError(
          'invalid_argument',
          `volumeMounts: '${b.path}' is inside another mount, '${a.path}'`,
        )
    }
  }
  return mounts
}

/** The node verifies content tokens against this digest; the token itself stays with the API. */
export function tokenSha256(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}
