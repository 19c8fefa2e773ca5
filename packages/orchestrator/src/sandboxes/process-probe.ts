import { readFileSync } from 'node:fs'

/**
 * A process as the kernel knows it: its pid and its start time (in clock
 * ticks since boot), which together name one process even after the pid is
 * reused.
 */
export interface ProcessIdentity {
  pid: number
  startTime: string
}

/**
 * Fields of /proc/<pid>/stat after the command name (which is in parentheses
 * and may itself hold spaces and parentheses: the last ')' ends it).
 */
function statFields(pid: number): string[] | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  const end = text.lastIndexOf(')')
  return end < 0 ? undefined : text.slice(end + 2).split(' ')
}

/** The process's identity now, if it exists. */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  const f = statFields(pid)
  // After the name: state is field 3 of the file, starttime field 22.
  const startTime = f?.[19]
  return f && startTime ? { pid, startTime } : undefined
}

/**
 * Whether the process is still alive: its /proc entry exists, is the same
 * process (same start time) and is neither a zombie nor dead. A container's
 * first process is not our child and is reaped by whoever adopted it (or,
 * under an init that does not reap, stays a zombie): one read of one small
 * file per sandbox, no `runc state`.
 */
export function processAlive(id: ProcessIdentity): boolean {
  const f = statFields(id.pid)
  if (!f || f[19] !== id.startTime) return false
  return f[0] !== 'Z' && f[0] !== 'X' && f[0] !== 'x'
}
