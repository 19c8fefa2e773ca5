import { WarrenError } from '@warren/shared'
import { z } from 'zod'
import { DIGEST } from './reference.js'

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const

/** What a manifest request accepts, most wanted first. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerList,
  MediaType.dockerManifest,
].join(', ')

const INDEX_TYPES = new Set<string>([MediaType.ociIndex, MediaType.dockerList])
const MANIFEST_TYPES = new Set<string>([MediaType.ociManifest, MediaType.dockerManifest])

/** Everything from a registry is foreign input: parsed here, trusted after. */
const descriptor = z.object({
  mediaType: z.string(),
  digest: z.string().regex(DIGEST),
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
})
export type Descriptor = z.infer<typeof descriptor>

const platform = z.object({
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
})
export type Platform = z.infer<typeof platform>

const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptor.extend({ platform: platform.optional() })),
})
export type ImageIndex = z.infer<typeof indexSchema>

const manifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptor,
  layers: z.array(descriptor),
})
export type ImageManifest = z.infer<typeof manifestSchema>

const configSchema = z.object({
  os: z.string().optional(),
  architecture: z.string().optional(),
  variant: z.string().optional(),
  config: z
    .object({
      Env: z.array(z.string()).nullish(),
      User: z.string().nullish(),
      WorkingDir: z.string().nullish(),
      Cmd: z.array(z.string()).nullish(),
      Entrypoint: z.array(z.string()).nullish(),
    })
    .nullish(),
  rootfs: z.object({ type: z.literal('layers'), diff_ids: z.array(z.string().regex(DIGEST)) }),
})
export type ImageConfigFile = z.infer<typeof configSchema>

export type ParsedManifest =
  | { kind: 'index'; index: ImageIndex }
  | { kind: 'manifest'; manifest: ImageManifest }

/**
 * Reads a manifest or index by its media type (the Content-Type header, or
 * the document's own `mediaType`). Schema 1 manifests (deprecated since 2017
 * and unsigned by any registry today) are refused by name.
 */
export function parseManifest(
  body: Buffer,
  contentType: string | undefined,
  what: string,
): ParsedManifest {
  let json: unknown
  try {
    json = JSON.parse(body.toString('utf8'))
  } catch {
    throw new WarrenError('bad_gateway', `${what}: the manifest is not JSON`)
  }
  const declared = (json as { mediaType?: unknown } | null)?.mediaType
  const header = contentType?.split(';')[0]?.trim()
  const type =
    typeof declared === 'string' ? declared : header && header !== 'application/json' ? header : ''
  if (type === MediaType.dockerSchema1 || type === MediaType.dockerSchema1Signed) {
    throw new WarrenError(
      'invalid_argument',
      `${what}: Docker schema 1 manifests are not supported`,
    )
  }
  const looksLikeIndex = Array.isArray((json as { manifests?: unknown }).manifests)
  if (INDEX_TYPES.has(type) || (!type && looksLikeIndex)) {
    return { kind: 'index', index: parse(indexSchema, json, what) }
  }
  if (MANIFEST_TYPES.has(type) || !type) {
    return { kind: 'manifest', manifest: parse(manifestSchema, json, what) }
  }
  throw new WarrenError('invalid_argument', `${what}: unsupported manifest type '${type}'`)
}

export function parseConfig(body: Buffer, what: string): ImageConfigFile {
  let json: unknown
  try {
    json = JSON.parse(body.toString('utf8'))
  } catch {
    throw new WarrenError('bad_gateway', `${what}: the image config is not JSON`)
  }
  return parse(configSchema, json, what)
}

function parse<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
  const r = schema.safeParse(json)
  if (!r.success) {
    const issue = r.error.issues[0]
    throw new WarrenError(
      'bad_gateway',
      `${what}: invalid document at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    )
  }
  return r.data
}
