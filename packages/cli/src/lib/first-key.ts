import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The first API key, kept root-readable in the data directory so that
 * `warren up` can print it again on every start and local CLI commands work
 * without flags. The database holds only its hash.
 */
export function firstKeyPath(dataDir: string): string {
  return join(dataDir, 'first-api-key')
}

export function saveFirstKey(dataDir: string, key: string): void {
  const path = firstKeyPath(dataDir)
  writeFileSync(path, `${key}\n`, { mode: 0o600 })
  chmodSync(path, 0o600)
}

export function readFirstKey(dataDir: string): string | undefined {
  const path = firstKeyPath(dataDir)
  if (!existsSync(path)) return undefined
  try {
    return readFileSync(path, 'utf8').trim() || undefined
  } catch {
    return undefined
  }
}
