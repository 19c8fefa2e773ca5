import { z } from 'zod'

/** What is recorded with every template build, next to its root filesystem. */
export const templateMetadataSchema = z.object({
  templateId: z.string(),
  buildId: z.string(),
  builtAt: z.string(),
  cpuCount: z.number().int().positive(),
  memoryMB: z.number().int().positive(),
  diskSizeMB: z.number().int().positive(),
  defaultUser: z.string(),
  defaultWorkdir: z.string(),
  /** The envd version the template was built beside; the running envd is the host's. */
  envdVersion: z.string(),
  /** The host uid that sandbox root maps to; the files are shifted to it. */
  uidBase: z.number().int().positive(),
  noNewPrivileges: z.boolean(),
  pidsLimit: z.number().int().positive(),
  /**
   * The template's read-only layers, top first, as paths relative to the
   * templates directory; absent for a single-layer build (its rootfs).
   */
  layers: z.array(z.string()).min(1).optional(),
  /** Environment of every process (a built template's ENV steps); a create's own vars win. */
  envVars: z.record(z.string(), z.string()).optional(),
  /** Started through envd once a sandbox's envd is up (a built template's start command). */
  startCmd: z.string().optional(),
  /** Polled through envd until it exits 0 before a create (or a build) counts as ready. */
  readyCmd: z.string().optional(),
  /**
   * A gVisor snapshot's memory image (`runsc checkpoint`), relative to the
   * build directory: a gVisor sandbox created from it continues its processes.
   */
  memoryImage: z.string().optional(),
})

export type TemplateMetadata = z.infer<typeof templateMetadataSchema>
