import { spawn } from 'node:child_process'
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { type Isolation, type Logger, type OrchestratorConfig, WarrenError } from '@warren/shared'
import type { OciRuntime } from './oci-runtime.js'
import type { Runc } from './runc.js'
import { type GvisorPlatform, Runsc } from './runsc.js'

/** A trial sandbox that takes longer than this has a platform that does not work here. */
const PROBE_TIMEOUT_MS = 10_000

/**
 * The node's OCI runtimes: runc always; runsc when it is installed (kept
 * even when it is not offered, so sandboxes made by it are still adopted,
 * paused and removed). `offered` is what new sandboxes may ask for.
 */
export class Runtimes {
  constructor(
    readonly runc: Runc,
    readonly runsc: Runsc | undefined,
    readonly offered: readonly Isolation[],
  ) {}

  /** The runtime of a sandbox being made: a clear refusal if this node lacks it, never another. */
  forNew(isolation: Isolation): OciRuntime {
    const rt = this.offered.includes(isolation) ? this.get(isolation) : undefined
    if (!rt) throw new WarrenError('unavailable', `this node does not offer ${isolation} isolation`)
    return rt
  }

  /** The runtime of an existing sandbox (by its record). */
  get(isolation: Isolation): OciRuntime {
    if (isolation === 'runc') return this.runc
    if (!this.runsc)
      throw new WarrenError('unavailable', 'this node has no runsc for its gVisor sandboxes')
    return this.runsc
  }

  all(): OciRuntime[] {
    return this.runsc ? [this.runc, this.runsc] : [this.runc]
  }
}

/**
 * Finds out what this node can offer. runsc must be installed and start a
 * trial sandbox; with platform `auto`, KVM is used when /dev/kvm exists and
 * a trial sandbox starts on it (a nested VM may open /dev/kvm and then hang),
 * ptrace otherwise.
 */
export async function detectRuntimes(
  cfg: OrchestratorConfig,
  runc: Runc,
  log: Logger,
): Promise<Runtimes> {
  const runscPath = ['/usr/bin/runsc', '/usr/local/bin/runsc', '/usr/sbin/runsc'].find(existsSync)
  if (!runscPath) return new Runtimes(runc, undefined, ['runc'])
  const make = (platform: GvisorPlatform) =>
    new Runsc(join(cfg.dataDir, 'runsc'), platform, join(cfg.dataDir, 'runsc-proc'))
  if (cfg.gvisorPlatform === 'off') return new Runtimes(runc, make('ptrace'), ['runc'])
  const candidates: GvisorPlatform[] =
    cfg.gvisorPlatform === 'auto'
      ? [...(existsSync('/dev/kvm') ? (['kvm'] as const) : []), 'ptrace']
      : [cfg.gvisorPlatform]
  const probe = probeKey(runscPath, candidates)
  let found = readProbe(probe)
  if (found === undefined) {
    found = null
    for (const platform of candidates) {
      if (await trialRun(platform)) {
        found = platform
        break
      }
      log.warn({ platform }, 'runsc could not start a trial sandbox on this platform')
    }
    writeProbe(probe, found)
  }
  if (found) {
    log.info({ platform: found }, 'gVisor isolation available')
    return new Runtimes(runc, make(found), ['runc', 'gvisor'])
  }
  log.warn('gVisor isolation unavailable: runsc starts no sandbox here')
  return new Runtimes(runc, make('ptrace'), ['runc'])
}

/**
 * Trial results are kept for this boot of the machine and this runsc binary
 * (a KVM trial that hangs costs its whole timeout): in /run, which a reboot
 * empties, under a key naming the boot, the binary and the platforms tried.
 */
const PROBE_FILE = '/run/warren-runsc-platform.json'

function probeKey(runscPath: string, candidates: GvisorPlatform[]): string {
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  const st = statSync(runscPath)
  return `${bootId}:${runscPath}:${st.size}:${st.mtimeMs}:${candidates.join(',')}`
}

function readProbe(key: string): GvisorPlatform | null | undefined {
  try {
    const saved = JSON.parse(readFileSync(PROBE_FILE, 'utf8')) as {
      key: string
      platform: GvisorPlatform | null
    }
    return saved.key === key ? saved.platform : undefined
  } catch {
    return undefined
  }
}

function writeProbe(key: string, platform: GvisorPlatform | null): void {
  // Whole or not at all: concurrent node starts may write it at once.
  const tmp = `${PROBE_FILE}.${process.pid}`
  writeFileSync(tmp, JSON.stringify({ key, platform }), { mode: 0o644 })
  renameSync(tmp, PROBE_FILE)
}

/** `runsc do /bin/true` without network, in a state directory of its own. */
async function trialRun(platform: GvisorPlatform): Promise<boolean> {
  const root = mkdtempSync('/tmp/warren-runsc-probe-')
  try {
    return await new Promise<boolean>((resolve) => {
      const child = spawn(
        'runsc',
        ['--root', root, '--network=none', `--platform=${platform}`, 'do', '/bin/true'],
        { stdio: 'ignore', detached: true },
      )
      const timer = setTimeout(() => {
        // runsc takes its sandbox down on SIGTERM; the group is killed if it will not go.
        child.kill('SIGTERM')
        setTimeout(() => {
          try {
            process.kill(-child.pid!, 'SIGKILL')
          } catch {}
        }, 3000).unref()
        resolve(false)
      }, PROBE_TIMEOUT_MS)
      child.on('error', () => {
        clearTimeout(timer)
        resolve(false)
      })
      child.on('exit', (code) => {
        clearTimeout(timer)
        resolve(code === 0)
      })
    })
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}
