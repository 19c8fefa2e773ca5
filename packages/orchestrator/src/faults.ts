import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Fault injection for end-to-end tests of rollback paths: a file
 * `<dataDir>/faults/<point>` makes the next pass through that point fail once
 * (the file is consumed). Nothing else can trigger it.
 */
export function takeFault(dataDir: string, point: string): boolean {
  const path = join(dataDir, 'faults', point)
  if (!existsSync(path)) return false
  rmSync(path, { force: true })
  return true
}
