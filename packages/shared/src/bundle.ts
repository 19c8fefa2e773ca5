import { z } from 'zod'

/**
 * A bundle: what moves between nodes (a paused sandbox's snapshot, a
 * template) as a set of content-addressed files plus metadata. The files
 * are named by their sha256 and checked against it on arrival, so a
 * corrupted or truncated transfer is refused whatever carried it (a peer
 * node, a shared snapshot store). What the files hold is the kind's
 * business: a files-layer tar today, memory checkpoints tomorrow.
 */
export const bundleFileSchema = z
  .object({
    /** Its role in the bundle, e.g. `upper.tar`. */
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    size: z.number().int().nonnegative(),
  })
  .strict()

export const BUNDLE_KINDS = ['sandbox', 'template'] as const
export type BundleKind = (typeof BUNDLE_KINDS)[number]

/** Ids of what a bundle carries: sandbox ids, `templateId/buildId`. */
export const bundleIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}(\/[A-Za-z0-9_-]{1,64})?$/)

export const bundleManifestSchema = z
  .object({
    version: z.literal(1),
    kind: z.enum(BUNDLE_KINDS),
    id: bundleIdSchema,
    createdAt: z.string(),
    /** The node that made it: only that node removes it from a shared store when it kills the sandbox. */
    origin: z.string().optional(),
    /** The kind's own record (a sandbox's node record, a template's metadata), parsed by its kind. */
    metadata: z.record(z.string(), z.unknown()),
    files: z.array(bundleFileSchema).max(1024),
  })
  .strict()

export type BundleFile = z.infer<typeof bundleFileSchema>
export type BundleManifest = z.infer<typeof bundleManifestSchema>

export function isSha256(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s)
}
