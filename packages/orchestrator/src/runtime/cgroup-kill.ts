import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CGROUP_V2 } from '../sandboxes/metrics.js'

/** How long the processes of a killed cgroup may take to go (ms). */
const GONE_WITHIN_MS = 3000

/**
 * SIGKILLs every process of a container's cgroup and waits until none is
 * left, without a runc run (which costs tens of ms under load). Returns false
 * when processes remain after the wait: the caller then falls back to
 * `runc delete --force`.
 *
 * cgroup v2 has `cgroup.kill`. On v1 each pid of the freezer cgroup gets
 * SIGKILL; a process forked meanwhile dies with the others, as the
 * container's first process is the init of its pid namespace and the kernel
 * kills the whole namespace with it. A frozen (paused) container is thawed
 * after the signal, since frozen tasks only die once they run. Between the
 * read of cgroup.procs and the signal a pid could only name another process
 * if it was reaped and the kernel cycled through pid_max meanwhile.
 */
export async function killCgroup(cgroupPath: string): Promise<boolean> {
  const dir = CGROUP_V2
    ? join('/sys/fs/cgroup', cgroupPath)
    : join('/sys/fs/cgroup/freezer', cgroupPath)
  const procs = join(dir, 'cgroup.procs')
  if (!existsSync(procs)) return true
  if (CGROUP_V2 && existsSync(join(dir, 'cgroup.kill'))) {
    writeOrGone(join(dir, 'cgroup.kill'), '1')
  } else {
    signalAll(procs)
    if (!CGROUP_V2) writeOrGone(join(dir, 'freezer.state'), 'THAWED')
    else writeOrGone(join(dir, 'cgroup.freeze'), '0')
  }
  const started = Date.now()
  for (;;) {
    const left = pidsOf(procs)
    if (!left.length) return true
    const waited = Date.now() - started
    if (waited > GONE_WITHIN_MS) return false
    // A process created between the read and the kill of the first pass.
    for (const pid of left) signal(pid)
    // The caller's answer waits for this: look every millisecond while the
    // processes are dying (a few ms), less often if it takes long.
    await sleep(waited < 100 ? 1 : 20)
  }
}

function signalAll(procs: string): void {
  for (const pid of pidsOf(procs)) signal(pid)
}

function signal(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}

function pidsOf(procs: string): number[] {
  try {
    return readFileSync(procs, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((p) => p > 0)
  } catch (err) {
    // The cgroup went (runc removed it): nothing left in it.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

function writeOrGone(path: string, value: string): void {
  try {
    writeFileSync(path, value)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}
