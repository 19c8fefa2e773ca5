import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cidrSize, parseCidr4, WarrenError } from '@warren/shared'
import { MACHINE_DIR, machineLock } from '../host-lock.js'
import { type ProcessIdentity, processAlive, processIdentity } from '../sandboxes/process-probe.js'

const CLAIMS_DIR = join(MACHINE_DIR, 'pools')

/** What a running node holds on this machine: its prefix and address pool. */
interface Claim {
  prefix: string
  pool: string
  process: ProcessIdentity
}

function overlaps(a: string, b: string): boolean {
  const x = parseCidr4(a)
  const y = parseCidr4(b)
  return x.network < y.network + cidrSize(y) && y.network < x.network + cidrSize(x)
}

function readClaims(): Claim[] {
  let names: string[]
  try {
    names = readdirSync(CLAIMS_DIR).filter((n) => n.endsWith('.json'))
  } catch {
    return []
  }
  return names.flatMap((n) => {
    try {
      return [JSON.parse(readFileSync(join(CLAIMS_DIR, n), 'utf8')) as Claim]
    } catch {
      return []
    }
  })
}

/**
 * Claims this node's prefix and address pool on the machine, so that a
 * second node given the same prefix, or a pool overlapping a running
 * node's, is refused at start — even before either has a sandbox whose
 * addresses the host would show. Claims of processes that are gone (same
 * pid, other start time: reused) are stale and ignored. One node checks
 * and writes at a time (a machine lock). Returns the release.
 */
export async function claimPool(prefix: string, pool: string): Promise<() => void> {
  const me = processIdentity(process.pid)
  if (!me) throw new WarrenError('internal', 'cannot read this process from /proc')
  const unlock = await machineLock('pools', 15_000)
  try {
    for (const c of readClaims()) {
      if (c.process.pid === me.pid || !processAlive(c.process)) continue
      if (c.prefix === prefix)
        throw new WarrenError(
          'conflict',
          `node prefix ${prefix} (WARREN_NODE_PREFIX) is in use by another node on this machine (process ${c.process.pid}): give each node its own prefix`,
        )
      if (overlaps(c.pool, pool))
        throw new WarrenError(
          'conflict',
          `address pool ${pool} (WARREN_ADDRESS_POOL) overlaps ${c.pool} of node ${c.prefix} on this machine (process ${c.process.pid}): give each node its own pool`,
        )
    }
    mkdirSync(CLAIMS_DIR, { recursive: true, mode: 0o700 })
    const file = join(CLAIMS_DIR, `${prefix}.json`)
    writeFileSync(file, JSON.stringify({ prefix, pool, process: me } satisfies Claim), {
      mode: 0o600,
    })
    return () => rmSync(file, { force: true })
  } finally {
    await unlock()
  }
}
