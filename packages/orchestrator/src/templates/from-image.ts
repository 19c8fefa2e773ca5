import { join } from 'node:path'
import { WarrenError } from '@warren/shared'
import type { NodeContext } from '../context.js'
import type { BuildState } from './build-cache.js'
import { holdImageStore } from './gc.js'
import { IMAGE_STORE } from './layer-store.js'
import type { TemplateMetadata } from './metadata.js'
import { hostPlatform, type PullProgress, prepareSandboxLayer, pullImage } from './oci/index.js'
import { BASE_RECIPE } from './recipe.js'

const MiB = 2 ** 20

/**
 * The base of a build `fromImage`: the image pulled by Warren itself (no
 * Docker) for this machine's platform, with the layer that makes it a
 * sandbox on top (E2B's `user` with passwordless sudo, envd's mount points).
 * As in E2B, the image's ENV is kept and its USER, WORKDIR, CMD and
 * ENTRYPOINT are not: steps and sandboxes run as `user` in its home, and the
 * start command is only the build's own.
 */
export async function pullBase(
  ctx: NodeContext,
  ref: string,
  auth: { username: string; password: string } | undefined,
  log: (level: 'info' | 'warn', message: string) => void,
  pin: (layers: string[]) => void,
): Promise<{ base: TemplateMetadata; state: BuildState }> {
  const into = join(ctx.templatesDir, IMAGE_STORE)
  const uidBase = ctx.cfg.uidBase
  // Garbage collection leaves the store alone until the build pins the layers.
  const release = holdImageStore()
  try {
    const image = await pullImage(ref, {
      into,
      uidBase,
      platform: hostPlatform(),
      maxLayerBytes: ctx.cfg.maxImageLayerMb * MiB,
      minFreeBytes: ctx.cfg.diskReserveMb * MiB,
      // The store is every team's: a private image stored by digest is
      // still asked of the registry with this build's credentials.
      verifyAccess: true,
      ...(auth ? { auth } : {}),
      onProgress: progressLog(log),
    })
    const extra = await prepareSandboxLayer({ into, layers: image.layers, uidBase })
    for (const note of extra.notes) log('warn', note)
    if (!extra.envdRunnable) {
      throw new WarrenError(
        'invalid_argument',
        `image '${ref}' cannot run Warren's envd (libc: ${extra.libc}): ${extra.notes.join('; ')}. Use a glibc-based image (Debian, Ubuntu, python, node…)`,
      )
    }
    const layers = [extra.layer, ...image.layers].map((l) => join(IMAGE_STORE, l))
    const envVars = Object.fromEntries(
      image.config.env
        .filter((e) => e.indexOf('=') > 0)
        .map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    )
    const d = BASE_RECIPE.defaults
    const base: TemplateMetadata = {
      // Build sandboxes on the bare image are named by its manifest, not by a template.
      templateId: 'image',
      buildId: image.manifestDigest.replace(':', '-'),
      builtAt: new Date().toISOString(),
      cpuCount: d.cpuCount,
      memoryMB: d.memoryMB,
      diskSizeMB: d.diskSizeMB,
      pidsLimit: d.pidsLimit,
      defaultUser: extra.user.name,
      defaultWorkdir: extra.user.home,
      envdVersion: ctx.envd?.version ?? 'unknown',
      uidBase,
      // `user`'s sudo is setuid; root in a sandbox is an unprivileged host uid.
      noNewPrivileges: false,
      layers,
      envVars,
    }
    pin(layers)
    log('info', `image ${image.reference} (${image.manifestDigest}): ${image.layers.length} layers`)
    return {
      base,
      state: { layers, envVars, user: base.defaultUser, workdir: base.defaultWorkdir },
    }
  } finally {
    release()
  }
}

/** The pull's progress as build log lines: one per layer when it is in place. */
function progressLog(log: (level: 'info', message: string) => void) {
  return (p: PullProgress) => {
    if (p.phase === 'resolve') log('info', `pulling ${p.reference}`)
    else if (p.phase === 'layer' && p.done) {
      const what = p.cached ? 'already here' : `${(p.bytes / MiB).toFixed(1)} MB downloaded`
      log('info', `layer ${p.digest.slice(7, 19)}: ${what}`)
    }
  }
}
