import type { Stats } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { readlink } from 'node:fs/promises'
import type { VolumeEntryStat } from '@warren/shared'
import { at } from './fs-at.js'

/** What every content operation knows: where the volume is and how its owners map. */
export interface VolumeScope {
  /** The volume's root on the host. */
  root: string
  /** Host uid (and gid) of the sandbox's root: ids are shifted by it both ways. */
  uidBase: number
}

/** The overflow id the kernel shows for a host id outside the sandbox's mapping. */
const NOBODY = 65534

/** A host id as a sandbox sees it. */
export function viewId(hostId: number, uidBase: number): number {
  const id = hostId - uidBase
  return id >= 0 && id < 65536 ? id : NOBODY
}

export function typeOf(st: Stats): VolumeEntryStat['type'] {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'directory'
  if (st.isSymbolicLink()) return 'symlink'
  return 'unknown'
}

/** `/a/b` for the names `['a', 'b']`; `/` for none. */
export function displayPath(names: string[]): string {
  return `/${names.join('/')}`
}

/**
 * E2B's VolumeEntryStat of the entry `name` of `dir` (lstat'ed by the
 * caller): owners in the sandbox's view, a symlink's target as text
 * (never followed), directories with size 0.
 */
export async function entryStat(
  scope: VolumeScope,
  st: Stats,
  names: string[],
  dir?: FileHandle,
): Promise<VolumeEntryStat> {
  const type = typeOf(st)
  const name = names.at(-1) ?? '/'
  const entry: VolumeEntryStat = {
    name,
    type,
    path: displayPath(names),
    size: type === 'directory' ? 0 : st.size,
    mode: st.mode & 0o7777,
    uid: viewId(st.uid, scope.uidBase),
    gid: viewId(st.gid, scope.uidBase),
    atime: st.atime.toISOString(),
    mtime: st.mtime.toISOString(),
    ctime: st.ctime.toISOString(),
  }
  if (type === 'symlink' && dir) entry.target = await readlink(at(dir, name)).catch(() => '')
  return entry
}

/** The default owner of what the content API creates: the sandbox's user. */
export const DEFAULT_OWNER = 1000

/** Host ids for the ids a request names (gid defaults to the uid when only that is given). */
export function hostOwner(
  scope: VolumeScope,
  ids: { uid?: number | undefined; gid?: number | undefined },
): { uid: number; gid: number } {
  const uid = ids.uid ?? DEFAULT_OWNER
  const gid = ids.gid ?? ids.uid ?? DEFAULT_OWNER
  return { uid: scope.uidBase + uid, gid: scope.uidBase + gid }
}
