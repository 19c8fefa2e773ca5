import { WarrenError } from '@warren/shared'
import { type RegistryClient, registryError } from './client.js'
import { digestOf, verifyBuffer } from './digest.js'
import { readBody } from './http.js'
import { readBlob, shared, writeBlob } from './layout.js'
import {
  type Descriptor,
  type ImageConfigFile,
  type ImageManifest,
  MANIFEST_ACCEPT,
  type Platform,
  parseConfig,
  parseManifest,
} from './manifest.js'
import { choosePlatform, formatPlatform, platformMatches } from './platform.js'
import { DIGEST, formatReference, type ImageReference } from './reference.js'

const MAX_MANIFEST = 4 << 20
const MAX_CONFIG = 16 << 20

export interface ResolvedImage {
  /** What the reference resolves to: the index's digest for a multi-platform image. */
  digest: string
  /** The chosen platform's manifest. */
  manifestDigest: string
  manifest: ImageManifest
  config: ImageConfigFile
}

interface Ctx {
  client: RegistryClient
  into: string
  ref: ImageReference
}

/** A digest's manifest, asked of the registry even when stored: may this caller read it? */
async function checkAccess(ctx: Ctx, digest: string): Promise<void> {
  const head = await ctx.client.request(`manifests/${digest}`, {
    method: 'HEAD',
    accept: MANIFEST_ACCEPT,
  })
  if (head.status !== 200) throw await registryError(head, formatReference(ctx.ref))
  head.discard()
}

/**
 * Reference → manifest → config, each document verified by digest and kept
 * in the store. A tag costs one HEAD when its manifest is already stored
 * (tags move, so they are always asked); a digest costs nothing then, or
 * one HEAD with `verifyAccess` (a store shared by callers with different
 * credentials must not hand one a private image another pulled).
 */
export async function resolveImage(
  client: RegistryClient,
  into: string,
  ref: ImageReference,
  want: Platform,
  opts: { verifyAccess?: boolean } = {},
): Promise<ResolvedImage> {
  const ctx: Ctx = { client, into, ref }
  const what = formatReference(ref)
  if (ref.digest && opts.verifyAccess) await checkAccess(ctx, ref.digest)
  const top = ref.digest
    ? { digest: ref.digest, body: await fetchManifest(ctx, ref.digest) }
    : await fetchTag(ctx, ref.tag ?? 'latest')
  let parsed = parseManifest(top.body.data, top.body.contentType, what)
  let manifestDigest = top.digest
  if (parsed.kind === 'index') {
    const chosen = choosePlatform(parsed.index, want, what)
    manifestDigest = chosen.digest
    const body = await fetchManifest(ctx, chosen.digest)
    parsed = parseManifest(body.data, body.contentType ?? chosen.mediaType, what)
    if (parsed.kind !== 'manifest') {
      throw new WarrenError('bad_gateway', `${what}: a nested index is not supported`)
    }
  }
  const manifest = parsed.manifest
  const config = parseConfig(await fetchBlob(ctx, manifest.config, MAX_CONFIG), what)
  if (config.os && config.architecture) {
    const have = { os: config.os, architecture: config.architecture, variant: config.variant }
    if (!platformMatches(have, { ...want, variant: have.variant ? want.variant : undefined })) {
      throw new WarrenError(
        'invalid_argument',
        `${what} is a ${formatPlatform(have)} image; this machine runs ${formatPlatform(want)}`,
      )
    }
  }
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new WarrenError('bad_gateway', `${what}: the config and manifest disagree on the layers`)
  }
  return { digest: top.digest, manifestDigest, manifest, config }
}

interface Body {
  data: Buffer
  contentType: string | undefined
}

/** A tag: HEAD for its digest, then the stored copy or a GET. */
async function fetchTag(ctx: Ctx, tag: string): Promise<{ digest: string; body: Body }> {
  const head = await ctx.client.request(`manifests/${tag}`, {
    method: 'HEAD',
    accept: MANIFEST_ACCEPT,
  })
  if (head.status !== 200) throw await registryError(head, formatReference(ctx.ref))
  head.discard()
  const announced = String(head.headers['docker-content-digest'] ?? '')
  if (DIGEST.test(announced)) {
    const cached = await readStored(ctx.into, announced)
    if (cached) return { digest: announced, body: cached }
  }
  const res = await ctx.client.request(`manifests/${tag}`, { accept: MANIFEST_ACCEPT })
  if (res.status !== 200) throw await registryError(res, formatReference(ctx.ref))
  const data = await readBody(res, MAX_MANIFEST)
  const sent = String(res.headers['docker-content-digest'] ?? '')
  const algorithm = DIGEST.test(sent) ? sent.slice(0, sent.indexOf(':')) : 'sha256'
  const digest = digestOf(data, algorithm)
  if (DIGEST.test(sent) && sent !== digest) {
    throw new WarrenError(
      'bad_gateway',
      `${formatReference(ctx.ref)}: the manifest does not match the digest the registry announced (${sent})`,
    )
  }
  const body = { data, contentType: headerType(res.headers['content-type']) }
  await store(ctx.into, digest, body)
  return { digest, body }
}

/** A manifest by digest: the stored copy, or a GET checked against the digest. */
function fetchManifest(ctx: Ctx, digest: string): Promise<Body> {
  return shared(`${ctx.into}\0${digest}`, () => fetchManifestOnce(ctx, digest))
}

async function fetchManifestOnce(ctx: Ctx, digest: string): Promise<Body> {
  const cached = await readStored(ctx.into, digest)
  if (cached) return cached
  const res = await ctx.client.request(`manifests/${digest}`, { accept: MANIFEST_ACCEPT })
  if (res.status !== 200) throw await registryError(res, `${formatReference(ctx.ref)} (${digest})`)
  const data = await readBody(res, MAX_MANIFEST)
  verifyBuffer(`manifest ${digest}`, data, digest)
  const body = { data, contentType: headerType(res.headers['content-type']) }
  await store(ctx.into, digest, body)
  return body
}

/** A small blob (the config), stored by digest. */
function fetchBlob(ctx: Ctx, desc: Descriptor, limit: number): Promise<Buffer> {
  return shared(`${ctx.into}\0${desc.digest}`, () => fetchBlobOnce(ctx, desc, limit))
}

async function fetchBlobOnce(ctx: Ctx, desc: Descriptor, limit: number): Promise<Buffer> {
  const cached = await readBlob(ctx.into, desc.digest)
  if (cached) return cached
  if (desc.size > limit) {
    throw new WarrenError('bad_gateway', `blob ${desc.digest} is too large (${desc.size} bytes)`)
  }
  const res = await ctx.client.request(`blobs/${desc.digest}`)
  if (res.status !== 200) throw await registryError(res, `blob ${desc.digest}`)
  const data = await readBody(res, desc.size)
  verifyBuffer(`blob ${desc.digest}`, data, desc.digest)
  await writeBlob(ctx.into, desc.digest, data)
  return data
}

async function store(into: string, digest: string, body: Body): Promise<void> {
  await writeBlob(into, digest, body.data)
}

/**
 * A stored manifest comes back without the registry's Content-Type: its own
 * `mediaType` field (or, failing that, its shape) says what it is.
 */
async function readStored(into: string, digest: string): Promise<Body | undefined> {
  const data = await readBlob(into, digest)
  return data ? { data, contentType: undefined } : undefined
}

function headerType(h: string | undefined): string | undefined {
  const t = h?.split(';')[0]?.trim()
  return t || undefined
}
