import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { WarrenError } from '@warren/shared'

const RELEASE_WAIT_MS = 2000

/**
 * One owner at a time for a directory: one node per data directory, one
 * builder per template. The lock is an abstract Unix socket named after the
 * directory: the kernel releases it the moment its holder dies, however it
 * dies, so a supervisor restarting Warren right after a SIGKILL never finds
 * a stale lock. (Abstract names are per network namespace; Warren runs in
 * the host's.) The owner's pid is written beside it, for the error message only.
 */
export async function acquireDirLock(
  dir: string,
  name: string,
  what: string,
): Promise<() => Promise<void>> {
  const key = createHash('sha256')
    .update(`${resolve(dir)}\0${name}`)
    .digest('hex')
    .slice(0, 40)
  const pidFile = join(dir, name)
  // A holder that was just killed releases the lock when its last thread
  // has exited, a moment after its main thread: a short retry covers that.
  const deadline = Date.now() + RELEASE_WAIT_MS
  let server = createServer()
  for (;;) {
    try {
      await new Promise<void>((ok, fail) => {
        server.once('error', fail)
        server.listen(`\0warren-lock-${key}`, ok)
      })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
      if (Date.now() > deadline) {
        const owner = readOwner(pidFile)
        throw new WarrenError(
          'conflict',
          `${what} ${dir} is in use by ${owner ? `process ${owner}` : 'another Warren process'}`,
        )
      }
      await sleep(50)
      server = createServer()
    }
  }
  server.unref()
  writeFileSync(pidFile, String(process.pid))
  return async () => {
    rmSync(pidFile, { force: true })
    await new Promise<void>((ok) => server.close(() => ok()))
  }
}

function readOwner(path: string): number | undefined {
  try {
    return Number(readFileSync(path, 'utf8')) || undefined
  } catch {
    return undefined
  }
}

/** Where locks and claims of the whole machine (every node on it) live. */
export const MACHINE_DIR = '/run/warren'

/** A lock of the whole machine (every node on it), waited for up to `waitMs`. */
export async function machineLock(name: string, waitMs: number): Promise<() => Promise<void>> {
  mkdirSync(MACHINE_DIR, { recursive: true, mode: 0o700 })
  const deadline = Date.now() + waitMs
  for (;;) {
    try {
      return await acquireDirLock(MACHINE_DIR, `${name}.lock`, 'lock')
    } catch (err) {
      if (Date.now() > deadline) throw err
    }
  }
}
