import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Isolation, isolationSchema, networkConfigSchema } from '@warren/shared'
import { z } from 'zod'

/** What the node remembers of a sandbox across its own restarts. */
export const sandboxRecordSchema = z.object({
  sandboxId: z.string(),
  templateId: z.string(),
  buildId: z.string(),
  containerId: z.string(),
  /**
   * The name its container and cgroup were made under when that is not its
   * id: a warm sandbox keeps its warm name there after a create claims it
   * (runc can rename neither). Its directory is renamed to its id at claim.
   */
  hostName: z.string().optional(),
  /** Null while the sandbox holds no network (paused to files only). */
  slotIndex: z.number().int().nullable(),
  sandboxIp: z.string().nullable(),
  hostIp: z.string().nullable(),
  cpuCount: z.number().int(),
  memoryMb: z.number().int(),
  diskSizeMb: z.number().int(),
  startedAt: z.string(),
  envdVersion: z.string(),
  state: z.enum(['running', 'paused']),
  /** A paused sandbox keeps its frozen processes (memory) or only its writable layer (files). */
  pausedKind: z.enum(['memory', 'files']).optional(),
  pausedAt: z.string().optional(),
  /** The network config as accepted; its rules are parsed again on adoption. */
  network: networkConfigSchema.default({}),
  allowInternetAccess: z.boolean().nullable().default(null),
  /**
   * Without public traffic: the token the node proxy asks of direct callers
   * (edge proxies check it themselves). The record is root's alone (0600).
   */
  trafficAccessToken: z.string().optional(),
  /** Volumes bind-mounted into the sandbox, again on every cold boot. */
  volumeMounts: z
    .array(z.object({ volumeId: z.string(), name: z.string(), path: z.string() }))
    .default([]),
  /** The runtime that runs it (runc or runsc), for every later step and adoption. */
  isolation: isolationSchema.default('runc'),
  /** Started from a gVisor snapshot's memory image: the snapshot's processes continued. */
  restoredFrom: z.literal('memory').optional(),
  /** When its container was last restored in place from its own checkpoint (a new first process). */
  restoredAt: z.string().optional(),
  /** Paused to files with its processes saved in `checkpoint` (gVisor): a resume restores them. */
  checkpointed: z.literal(true).optional(),
})

export type SandboxRecord = z.infer<typeof sandboxRecordSchema>

/**
 * Files of one sandbox under <dataDir>/sandboxes/<id>/: its record and OCI
 * bundle, its log, its disk image mounted at `disk` (the writable layer and
 * overlay's work directory live on it), and the overlay root at `rootfs`.
 * `templates` links to the templates directory, so the overlay's options
 * name only paths relative to the sandbox directory (its mountinfo shows no
 * host paths).
 */
export function sandboxPaths(dataDir: string, sandboxId: string) {
  const dir = join(dataDir, 'sandboxes', sandboxId)
  return {
    dir,
    record: join(dir, 'sandbox.json'),
    bundle: dir,
    rootfs: join(dir, 'rootfs'),
    image: join(dir, 'disk.img'),
    disk: join(dir, 'disk'),
    upper: join(dir, 'disk', 'upper'),
    work: join(dir, 'disk', 'work'),
    templates: join(dir, 'templates'),
    log: join(dir, 'sandbox.log'),
    /** A gVisor sandbox's saved processes while it is paused to files (see checkpoint.ts). */
    checkpoint: join(dir, 'checkpoint'),
    /** Present from a kill's answer until its teardown removed the directory (see cut-off). */
    tearingDown: join(dir, 'tearing-down'),
  }
}

export function writeRecord(dataDir: string, record: SandboxRecord): void {
  const path = sandboxPaths(dataDir, record.sandboxId).record
  writeFileSync(`${path}.tmp`, JSON.stringify(record), { mode: 0o600 })
  renameSync(`${path}.tmp`, path)
}

export function readRecord(dataDir: string, sandboxId: string): SandboxRecord | undefined {
  const path = sandboxPaths(dataDir, sandboxId).record
  if (!existsSync(path)) return undefined
  const parsed = sandboxRecordSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')))
  return parsed.success ? parsed.data : undefined
}

/**
 * The name a sandbox's container and cgroup go by (see `hostName`): its id
 * unless a create claimed it warm, and its id when its record is gone (debris).
 */
export function hostNameOf(dataDir: string, sandboxId: string): string {
  return readRecord(dataDir, sandboxId)?.hostName ?? sandboxId
}

/** The isolation a sandbox was made with; runc when its record is gone (debris). */
export function recordedIsolation(dataDir: string, sandboxId: string): Isolation {
  return readRecord(dataDir, sandboxId)?.isolation ?? 'runc'
}
