import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { cgroupsPath, containerId, type NodeContext } from '../context.js'
import { CGROUP_V2 } from './metrics.js'
import { processAlive, processIdentity } from './process-probe.js'
import { hostNameOf, recordedIsolation } from './record.js'

/** A running sandbox's first process, as the node watches it. */
export interface InitWatch {
  /** Cheap (one small procfs read): whether the first process still runs. */
  alive(): boolean
  /** Once it is gone: what the node saw, for the tombstone's story. */
  exit(): { detail: string; oom: boolean }
}

/** OOM kills counted in the sandbox's memory cgroup (v2 memory.events, v1 memory.oom_control). */
function oomKills(cgroup: string): number {
  const file = CGROUP_V2
    ? join('/sys/fs/cgroup', cgroup, 'memory.events')
    : join('/sys/fs/cgroup/memory', cgroup, 'memory.oom_control')
  try {
    const line = readFileSync(file, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('oom_kill '))
    return line ? Number(line.split(' ')[1]) || 0 : 0
  } catch {
    return 0
  }
}

/**
 * Finds a running sandbox's first process (one `state` of its own runtime,
 * runc or runsc, when the sandbox starts being watched) and returns a probe
 * for it. A container that is already stopped is reported dead at once.
 */
export async function watchInit(ctx: NodeContext, sandboxId: string): Promise<InitWatch> {
  const runtime = ctx.runtimes.get(recordedIsolation(ctx.cfg.dataDir, sandboxId))
  const name = hostNameOf(ctx.cfg.dataDir, sandboxId)
  const state = await runtime.state(containerId(ctx.cfg, name))
  const id =
    state && state.status !== 'stopped' && state.pid ? processIdentity(state.pid) : undefined
  const cgroup = cgroupsPath(ctx.cfg, name)
  return {
    alive: () => !!id && processAlive(id),
    // The cgroup stays until the container is deleted: its OOM count says
    // whether the kernel took the sandbox down for its memory.
    exit: () =>
      oomKills(cgroup) > 0
        ? { detail: 'the sandbox ran out of memory (OOM-killed)', oom: true }
        : { detail: "the sandbox's first process exited", oom: false },
  }
}
