import { isAbsolute, relative } from 'node:path'
import { WarrenError } from '@warren/shared'
import type { NodeContext } from '../context.js'
import type { BuildState } from './build-cache.js'
import { LAYERS } from './layer-store.js'
import type { TemplateMetadata } from './metadata.js'
import { BASE_RECIPE } from './recipe.js'

/** What the OCI image puller (templates/oci/) gives back for an image. */
export interface PulledImage {
  /** Unpacked, uid-shifted layer directories, top first, under the layer store. */
  layers: string[]
  config: { env: string[]; user: string; workdir: string; cmd: string[]; entrypoint: string[] }
}

export type ImagePuller = (
  ref: string,
  opts: { auth?: { username: string; password: string }; platform: string; into: string },
) => Promise<PulledImage>

let puller: ImagePuller | undefined

/** Plugs the OCI image puller in; until then a build from an image fails with a clear reason. */
export function useImagePuller(p: ImagePuller): void {
  puller = p
}

/**
 * The base of a build `fromImage`: the image's layers (pulled by Warren
 * itself, no Docker) and its config as the starting settings.
 */
export async function pullBase(
  ctx: NodeContext,
  ref: string,
  auth: { username: string; password: string } | undefined,
): Promise<{ base: TemplateMetadata; state: BuildState }> {
  if (!puller) {
    throw new WarrenError(
      'unavailable',
      `cannot build from image '${ref}': this node has no OCI image puller yet; build from a template (fromTemplate, or FROM base in a Dockerfile) instead`,
    )
  }
  const into = `${ctx.templatesDir}/${LAYERS}`
  const image = await puller(ref, { ...(auth ? { auth } : {}), platform: 'linux/amd64', into })
  const layers = image.layers.map((l) => (isAbsolute(l) ? relative(ctx.templatesDir, l) : l))
  const envVars = Object.fromEntries(
    image.config.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  )
  const d = BASE_RECIPE.defaults
  const base: TemplateMetadata = {
    templateId: ref,
    buildId: 'image',
    builtAt: new Date().toISOString(),
    cpuCount: d.cpuCount,
    memoryMB: d.memoryMB,
    diskSizeMB: d.diskSizeMB,
    pidsLimit: d.pidsLimit,
    defaultUser: image.config.user || 'root',
    defaultWorkdir: image.config.workdir || '/',
    envdVersion: ctx.envd?.version ?? 'unknown',
    uidBase: ctx.cfg.uidBase,
    noNewPrivileges: BASE_RECIPE.noNewPrivileges,
    layers,
    envVars,
  }
  return {
    base,
    state: { layers, envVars, user: base.defaultUser, workdir: base.defaultWorkdir },
  }
}
