import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { WarrenError } from '@warren/shared'
import type { NodeContext } from '../context.js'
import { run } from '../exec.js'
import { netnsNames } from '../network/netns.js'
import type { NetworkSlot } from '../network/slots.js'
import type { Runsc } from '../runtime/runsc.js'
import { waitForPort } from './readiness.js'
import { type SandboxRecord, sandboxPaths } from './record.js'

/** Where a snapshot's memory image lives, relative to its build directory. */
export const MEMORY_IMAGE_DIR = 'checkpoint'

const READY_TIMEOUT_MS = 30_000
/** Time for envd to close its listener after the signal (it listens again after 3 s). */
const ENVD_QUIESCE_MS = 200

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
 *
 * gVisor refuses to save a TCP connection on eth0 that is open or in
 * TIME_WAIT, and a refused checkpoint ends the sandbox. The connections the
 * host holds (the node proxy's, the envd client's) are reset first (`ss -K`,
 * a reset ends gVisor's side at once); connections the sandbox itself closed
 * in the last minute remain a risk (see docs/architecture.md "gVisor").
 */
export async function checkpointRunning<T>(
  ctx: NodeContext,
  record: SandboxRecord,
  imageDir: string,
  whileStopped: () => Promise<T>,
): Promise<T> {
  const runsc = runscOf(ctx)
  const paths = sandboxPaths(ctx.cfg.dataDir, record.sandboxId)
  if (record.slotIndex === null || !record.sandboxIp || !record.hostIp)
    throw new WarrenError('internal', `sandbox ${record.sandboxId} holds no network slot`)
  const slot: NetworkSlot = {
    index: record.slotIndex,
    sandboxIp: record.sandboxIp,
    hostIp: record.hostIp,
    ...netnsNames(ctx.cfg.prefix, record.slotIndex),
  }
  // envd stops listening for a moment (its listener cannot be saved), then
  // the host's connections are reset: a checkpoint must begin in that moment.
  await runsc.signal(record.containerId, 'USR2')
  await sleep(ENVD_QUIESCE_MS)
  await resetHostConnections(slot)
  // gVisor's stack takes the resets in, envd closes those sockets.
  await sleep(ENVD_QUIESCE_MS)
  try {
    await runsc.checkpoint(record.containerId, imageDir, paths.log)
  } catch (err) {
    throw new WarrenError(
      'internal',
      `gVisor could not checkpoint sandbox ${record.sandboxId}, which it ended: ${(err as Error).message}`,
      { cause: err },
    )
  }
  try {
    return await whileStopped()
  } finally {
    await restoreInPlace(ctx, record, slot, imageDir)
  }
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
