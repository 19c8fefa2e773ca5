import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { WarrenError } from '@warren/shared'
import { ENVD_TIME_WAIT_FILE } from '@warren/shared/envd-checkpoint'
import type { NodeContext } from '../context.js'
import { run } from '../exec.js'
import { netnsNames } from '../network/netns.js'
import type { NetworkSlot } from '../network/slots.js'
import type { Runsc } from '../runtime/runsc.js'
import { waitForPort } from './readiness.js'
import { type SandboxRecord, sandboxPaths, writeRecord } from './record.js'

/** Where a snapshot's memory image lives, relative to its build directory. */
export const MEMORY_IMAGE_DIR = 'checkpoint'

const READY_TIMEOUT_MS = 30_000
/** How long the sockets may take to go after envd's signal (it listens again after 3 s). */
const SAVABLE_WITHIN_MS = 2000

/** The source's envd token beside its memory image (root's alone, as the image is). */
const ENVD_TOKEN_FILE = 'envd-token'

export function writeEnvdToken(imageDir: string, token: string): void {
  writeFileSync(join(imageDir, ENVD_TOKEN_FILE), token, { mode: 0o600 })
}

export function readEnvdToken(imageDir: string): string | undefined {
  const path = join(imageDir, ENVD_TOKEN_FILE)
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined
}

export function runscOf(ctx: NodeContext): Runsc {
  const rt = ctx.runtimes.runsc
  if (!rt) throw new WarrenError('unavailable', 'this node has no runsc for its gVisor sandboxes')
  return rt
}

/**
 * Checkpoints a running gVisor sandbox into `imageDir`, runs `whileStopped`
 * (its processes are saved and stopped: the files are consistent with the
 * memory image), then restores the sandbox in place, same id, same slot:
 * its processes continue after a pause of checkpoint + restore.
 */
export async function checkpointRunning<T>(
  ctx: NodeContext,
  record: SandboxRecord,
  imageDir: string,
  whileStopped: () => Promise<T>,
): Promise<T> {
  const slot = slotOf(ctx, record)
  await saveProcesses(ctx, record, slot, imageDir)
  try {
    return await whileStopped()
  } finally {
    await restoreInPlace(ctx, record, slot, imageDir)
  }
}

/**
 * Saves a frozen (hot-paused) gVisor sandbox's processes into its own
 * directory (`paths.checkpoint`), ending its container: what a move to
 * another node or a drop to files keeps of its memory. False, with nothing
 * kept, when gVisor cannot save it (sockets it holds); the container is
 * then still there, frozen, for the caller to drop as before.
 */
export async function checkpointFrozen(ctx: NodeContext, record: SandboxRecord): Promise<boolean> {
  const runsc = runscOf(ctx)
  const imageDir = sandboxPaths(ctx.cfg.dataDir, record.sandboxId).checkpoint
  rmSync(imageDir, { recursive: true, force: true })
  mkdirSync(imageDir, { mode: 0o700 })
  await runsc.resume(record.containerId)
  try {
    await saveProcesses(ctx, record, slotOf(ctx, record), imageDir)
    return true
  } catch (err) {
    rmSync(imageDir, { recursive: true, force: true })
    ctx.log.warn({ err, sandboxId: record.sandboxId }, 'could not save the processes; files only')
    // Refused before the checkpoint began: frozen again, as it was.
    if ((await runsc.state(record.containerId))?.status === 'running')
      await runsc.pause(record.containerId).catch(() => {})
    return false
  }
}

function slotOf(ctx: NodeContext, record: SandboxRecord): NetworkSlot {
  if (record.slotIndex === null || !record.sandboxIp || !record.hostIp)
    throw new WarrenError('internal', `sandbox ${record.sandboxId} holds no network slot`)
  return {
    index: record.slotIndex,
    sandboxIp: record.sandboxIp,
    hostIp: record.hostIp,
    ...netnsNames(ctx.cfg.prefix, record.slotIndex),
  }
}

/**
 * `runsc checkpoint` of a running gVisor sandbox into `imageDir`, which ends
 * its container. gVisor refuses to save a TCP connection that is open or in
 * TIME_WAIT, and a refused checkpoint ends the sandbox, so first envd resets
 * its connections and stops listening for a moment (envd's checkpoint.ts),
 * the host's connections are reset too, and the checkpoint begins only once
 * gVisor holds no TCP socket it would refuse (else `conflict`, the sandbox
 * untouched). Connections its own processes closed in the last minute
 * remain a risk (see docs/architecture.md "gVisor").
 */
async function saveProcesses(
  ctx: NodeContext,
  record: SandboxRecord,
  slot: NetworkSlot,
  imageDir: string,
): Promise<void> {
  const runsc = runscOf(ctx)
  await runsc.signal(record.containerId, 'USR2')
  await resetHostConnections(slot)
  try {
    await waitSavable(runsc, record)
  } catch (err) {
    // No checkpoint follows: envd listens again now, not when its timer fires.
    await listenAgain(runsc, record.containerId).catch(() => {})
    throw err
  }
  try {
    await runsc.checkpoint(
      record.containerId,
      imageDir,
      sandboxPaths(ctx.cfg.dataDir, record.sandboxId).log,
    )
  } catch (err) {
    throw new WarrenError(
      'internal',
      `gVisor could not checkpoint sandbox ${record.sandboxId}, which it ended: ${(err as Error).message}`,
      { cause: err },
    )
  }
}

/** A restored envd listens again at once (else when its quiesce timer fires). */
export async function listenAgain(runsc: Runsc, id: string): Promise<void> {
  await runsc.signal(id, 'HUP')
}

/** The source goes on from its own image, in its own slot (its address set on eth0 again). */
async function restoreInPlace(
  ctx: NodeContext,
  record: SandboxRecord,
  slot: NetworkSlot,
  imageDir: string,
): Promise<void> {
  const runsc = runscOf(ctx)
  const paths = sandboxPaths(ctx.cfg.dataDir, record.sandboxId)
  await runsc.destroy(record.containerId)
  await readdress(slot)
  await runsc.restore(record.containerId, paths.bundle, imageDir, paths.log)
  await listenAgain(runsc, record.containerId)
  // A new first process: the exit watcher looks it up again, not at the saved one.
  record.restoredAt = new Date().toISOString()
  writeRecord(ctx.cfg.dataDir, record)
  await waitForPort(slot.sandboxIp, ctx.cfg.readyPort, {
    timeoutMs: READY_TIMEOUT_MS,
    alive: async () => (await runsc.state(record.containerId))?.status === 'running',
  })
}

/**
 * gVisor takes eth0's address for its own stack and removes it from the
 * namespace; a restore (or a boot after one) reads it there again.
 */
export async function readdress(slot: NetworkSlot): Promise<void> {
  await run('ip', ['-n', slot.netns, '-batch', '-'], {
    input: [
      `addr replace ${slot.sandboxIp}/30 dev eth0`,
      'link set eth0 up',
      `route replace default via ${slot.hostIp}`,
    ].join('\n'),
  })
}

/** Resets every TCP connection the host holds to the sandbox (the peer sees a reset). */
async function resetHostConnections(slot: NetworkSlot): Promise<void> {
  // ss answers "Invalid argument" when nothing matched: not a failure.
  await run('ss', ['-K', '-t', 'dst', slot.sandboxIp], { okCodes: [1, 2] }).catch(() => {})
}

/** TCP states in /proc/net/tcp gVisor (2022) saves: none but closed. */
const TCP_CLOSE = '07'

/**
 * Waits until the sandbox's kernel holds no TCP socket but closed ones and
 * envd says none of its connections is in TIME_WAIT (invisible in /proc,
 * deaf to resets): a checkpoint refused on one ends the sandbox, so a socket
 * that stays (a user's server or connection) refuses the snapshot instead
 * and the source runs on. Connections the sandbox's own processes closed in
 * the last minute are not seen (see docs/architecture.md "gVisor").
 */
async function waitSavable(runsc: Runsc, record: SandboxRecord): Promise<void> {
  const deadline = Date.now() + SAVABLE_WITHIN_MS
  for (;;) {
    const out = await runsc.exec(record.containerId, [
      '/bin/sh',
      '-c',
      `cat /proc/net/tcp /proc/net/tcp6; echo "time-wait-until $(cat ${ENVD_TIME_WAIT_FILE} 2>/dev/null)"`,
    ])
    const held = heldSockets(out)
    const timeWaitUntil = Number(/^time-wait-until (\d+)$/m.exec(out)?.[1] ?? 0)
    if (held.length === 0 && timeWaitUntil <= Date.now()) return
    if (Date.now() > deadline || timeWaitUntil > deadline) {
      const why = held.length
        ? `it holds TCP sockets (${held.slice(0, 5).join(', ')}): close its servers and connections`
        : `a connection closed ${Math.ceil((timeWaitUntil - Date.now()) / 1000)} s before it ends its TIME_WAIT`
      throw new WarrenError(
        'conflict',
        `gVisor cannot save sandbox ${record.sandboxId} yet: ${why}, then try again`,
      )
    }
    await sleep(50)
  }
}

/** The sockets /proc/net/tcp{,6} lists that are not closed, as "local→remote state". */
export function heldSockets(procNetTcp: string): string[] {
  const held: string[] = []
  for (const line of procNetTcp.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (!/^\d+:$/.test(f[0] ?? '') || f[3] === TCP_CLOSE) continue
    held.push(`${f[1]}→${f[2]} ${f[3]}`)
  }
  return held
}
