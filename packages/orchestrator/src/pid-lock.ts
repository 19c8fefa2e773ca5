import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { WarrenError } from '@warren/shared'

/**
 * One owner at a time for a directory: one builder per template (setup and
 * `warren up` may both try), one node per data directory. The lock file holds
 * the owner's pid; a lock whose owner is gone is stale and taken over.
 */
export function acquirePidLock(dir: string, name: string, what: string): () => void {
  const path = join(dir, name)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx')
      writeSync(fd, String(process.pid))
      closeSync(fd)
      return () => rmSync(path, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number(readFileSync(path, 'utf8'))
      if (owner && owner !== process.pid && isAlive(owner)) {
        throw new WarrenError('conflict', `${what} ${dir} is in use by process ${owner}`)
      }
      rmSync(path, { force: true })
    }
  }
  throw new WarrenError('conflict', `could not lock ${path}`)
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
