import { chmodSync, lchownSync, lstatSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Shifts every file's owner and group by `base`, so that root inside a
 * sandbox (mapped to host uid `base`) owns what root owned in the template.
 * Hard links are shifted once (by inode). chown clears setuid/setgid bits, so
 * the original mode is restored afterwards — sudo must stay setuid root.
 */
export function shiftOwnership(root: string, base: number): number {
  const seen = new Set<string>()
  let count = 0
  const visit = (path: string): void => {
    const st = lstatSync(path)
    const key = `${st.dev}:${st.ino}`
    if (!seen.has(key)) {
      seen.add(key)
      if (st.uid < base) {
        lchownSync(path, st.uid + base, st.gid + base)
        if (!st.isSymbolicLink() && st.mode & 0o6000) chmodSync(path, st.mode & 0o7777)
        count++
      }
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(path)) visit(join(path, name))
    }
  }
  visit(root)
  return count
}
