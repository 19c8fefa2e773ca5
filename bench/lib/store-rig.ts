// The control plane without HTTP or containers, for the store benchmark: the
// lifecycle engine on a store URL, with the in-memory stand-in node, the
// system clock (SQLite) or the store's time (PostgreSQL), and CPU meters for
// this process and for the PostgreSQL server's processes.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { Catalog } from '../../packages/api/src/catalog/catalog.js'
import { LifecycleEngine } from '../../packages/api/src/lifecycle/engine.js'
import { Placement } from '../../packages/api/src/placement/nodes.js'
import { type Db, openDatabase } from '../../packages/api/src/store/db.js'
import { ensureDefaultTeam, type Team } from '../../packages/api/src/store/teams.js'
import { StandInNode } from '../../packages/api/src/testing/stand-in-node.js'

export interface Rig {
  db: Db
  engine: LifecycleEngine
  team: Team
  node: StandInNode
  close(): Promise<void>
}

export async function startRig(
  url: string,
  sandboxes: number,
  expiryConcurrency: number,
): Promise<Rig> {
  const log = pino({ level: 'silent' })
  const db = await openDatabase(url)
  const team = await ensureDefaultTeam(db, {
    maxConcurrentSandboxes: sandboxes * 2,
    maxLifetimeS: 86_400,
  })
  const node = new StandInNode('bench-node')
  node.memoryMbTotal = 1 << 30
  const placement = new Placement(log)
  await placement.register(node.transport)
  const catalog = new Catalog(() => 'http://bench-node.invalid:5007')
  const engine = new LifecycleEngine({
    db,
    placement,
    catalog,
    log,
    maxConcurrentExpiries: expiryConcurrency,
  })
  await engine.start()
  return {
    db,
    engine,
    team,
    node,
    async close() {
      await engine.stop()
      await db.destroy()
    },
  }
}

/** CPU time (user + system, ms) of this process. */
export function selfCpuMs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

const TICK_MS = 1000 / 100 // USER_HZ is 100 on Linux

/** CPU time (ms) of a PostgreSQL server's postmaster and every backend it forked. */
export function serverCpuMs(dataDir: string): number {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
  let ticks = 0
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let stat: string
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    } catch {
      continue // gone meanwhile
    }
    // Fields after the command (which may hold spaces) start after its ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ppid = Number(f[1])
    if (Number(pid) !== postmaster && ppid !== postmaster) continue
    ticks += Number(f[11]) + Number(f[12]) // utime, stime
    // Backends that ended were reaped by the postmaster: their time is its children's.
    if (Number(pid) === postmaster) ticks += Number(f[13]) + Number(f[14])
  }
  return ticks * TICK_MS
}
