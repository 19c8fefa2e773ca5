import { lstatSync, mkdirSync, rmSync, symlinkSync } from 'node:fs'
import { join, relative } from 'node:path'

/**
 * The overlay's lower directories as short links in the sandbox's own
 * directory, `l/<n>` → `../templates/<layer>` (Docker's overlay2 does the
 * same): mount options are one page in all, and a pulled image's layer path
 * alone is ~100 bytes. Relative links, so the lowerdir option the sandbox
 * sees in its mountinfo names no host path. Made again on every boot.
 */
export function linkLowers(dir: string, templates: string, layers: string[]): string[] {
  const links = join(dir, 'l')
  rmSync(links, { recursive: true, force: true })
  mkdirSync(links, { mode: 0o700 })
  return layers.map((layer, i) => {
    symlinkSync(join('..', relative(dir, templates), layer), join(links, String(i)))
    return `l/${i}`
  })
}

/**
 * The owner and mode of the image's /etc: from the top layer that has an
 * `etc`, if it is a real directory of that layer. lstat, because a layer
 * is the image's to shape: a symlinked `etc` would otherwise be followed
 * onto the host's own /etc (or anywhere).
 */
export function lowerEtc(
  templatesDir: string,
  layers: string[],
): { mode: number; uid: number; gid: number } | undefined {
  for (const layer of layers) {
    const st = lstatSync(join(templatesDir, layer, 'etc'), { throwIfNoEntry: false })
    if (st) return st.isDirectory() ? st : undefined
  }
  return undefined
}
