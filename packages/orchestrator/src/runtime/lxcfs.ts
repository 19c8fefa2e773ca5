import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '@warren/shared'
import { run } from '../exec.js'
import { machineLock } from '../host-lock.js'

/** Where Debian's lxcfs service mounts it; nodes share one daemon per machine. */
export const LXCFS_ROOT = '/var/lib/lxcfs'

/**
 * The files LXCFS renders per reading process's cgroup, mounted over their
 * /proc and /sys counterparts in each sandbox: `free`, `uptime`, `top` and
 * os.cpu_count() see the sandbox's own limits and lifetime, not the host's.
 * (runc allows exactly these destinations under /proc.)
 */
export const LXCFS_FILES = [
  '/proc/cpuinfo',
  '/proc/diskstats',
  '/proc/loadavg',
  '/proc/meminfo',
  '/proc/stat',
  '/proc/swaps',
  '/proc/uptime',
  '/sys/devices/system/cpu',
]

function mounted(): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === LXCFS_ROOT && l.includes(' - fuse.lxcfs '))
}

function answers(): boolean {
  try {
    statSync(`${LXCFS_ROOT}/proc/meminfo`)
    return true
  } catch {
    return false
  }
}

/**
 * Makes sure LXCFS serves the machine: a running daemon is used as it is
 * (Debian's lxcfs service, or one an earlier node started); a mount whose
 * daemon died is cleared; otherwise the daemon is started, detached, so it
 * outlives this node as the sandboxes reading it do. Undefined when lxcfs is
 * not installed or will not start: sandboxes then see the host's figures.
 */
export async function ensureLxcfs(log: Logger): Promise<string | undefined> {
  if (mounted() && answers()) return LXCFS_ROOT
  // Nodes starting together on one machine would each start a daemon on
  // the same mount point: one at a time looks and starts.
  const unlock = await machineLock('lxcfs', 15_000)
  try {
    return await startLxcfs(log)
  } finally {
    await unlock()
  }
}

async function startLxcfs(log: Logger): Promise<string | undefined> {
  if (mounted() && answers()) return LXCFS_ROOT
  if (!existsSync('/usr/bin/lxcfs')) {
    log.warn('lxcfs is not installed: sandboxes see the host memory, CPUs and uptime')
    return undefined
  }
  if (mounted()) await run('umount', ['--lazy', LXCFS_ROOT]).catch(() => {})
  mkdirSync(LXCFS_ROOT, { recursive: true })
  const daemon = spawn('/usr/bin/lxcfs', ['--enable-cfs', '--enable-pidfd', '-u', LXCFS_ROOT], {
    detached: true,
    stdio: 'ignore',
  })
  daemon.unref()
  for (let i = 0; i < 50; i++) {
    if (mounted() && answers()) return LXCFS_ROOT
    await sleep(100)
  }
  log.warn('lxcfs did not start: sandboxes see the host memory, CPUs and uptime')
  return undefined
}
