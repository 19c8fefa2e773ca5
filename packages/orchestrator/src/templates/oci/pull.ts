import { mkdir } from 'node:fs/promises'
import { WarrenError } from '@warren/shared'
import pLimit from 'p-limit'
import type { Credentials } from './auth.js'
import { createRegistryClient } from './client.js'
import { diskLimits } from './disk-limits.js'
import { ensureLayer, type LayerProgress } from './fetch-layer.js'
import { createHttpTransport } from './http.js'
import { sweepStaleTemps } from './layout.js'
import type { Platform } from './manifest.js'
import { hostPlatform } from './platform.js'
import { formatReference, parseReference, registryEndpoint } from './reference.js'
import { resolveImage } from './resolve.js'

export interface PullOptions {
  /** The layer store directory (created if missing). */
  into: string
  auth?: Credentials
  /** Default: this machine's (linux/amd64, linux/arm64/v8, …). */
  platform?: Platform
  /** The host uid that sandbox root maps to; layer owners are shifted by it. */
  uidBase: number
  /** Registries (host[:port]) to reach over plain HTTP; loopback always is. */
  insecureRegistries?: string[]
  /** Layers downloaded at once. */
  concurrency?: number
  /** The most one layer may take on disk once unpacked; a bigger one fails the pull. */
  maxLayerBytes?: number
  /** Free space the store's filesystem keeps: unpacking stops before going below it. */
  minFreeBytes?: number
  /**
   * Ask the registry even for an image stored by digest, so that a store
   * shared by several teams gives a private image only to callers the
   * registry lets read it (a tag is always asked: tags move).
   */
  verifyAccess?: boolean
  onProgress?: (p: PullProgress) => void
}

export type PullProgress =
  | { phase: 'resolve'; reference: string }
  | { phase: 'layers'; reference: string; total: number }
  | ({ phase: 'layer'; reference: string } & LayerProgress)
  | { phase: 'done'; reference: string; digest: string }

/** What a sandbox started from the image needs of its config. */
export interface ImageRunConfig {
  env: string[]
  user?: string
  workdir?: string
  cmd?: string[]
  entrypoint?: string[]
}

export interface PulledImage {
  /** The canonical reference, e.g. `docker.io/library/python:3.12`. */
  reference: string
  /** What the reference resolves to (an index's digest for a multi-platform image). */
  digest: string
  /** The manifest of the chosen platform. */
  manifestDigest: string
  platform: Platform
  /** Unpacked layer directories, top first, relative to `into`: overlay lower dirs. */
  layers: string[]
  config: ImageRunConfig
}

/**
 * Pulls an image from an OCI/Docker registry into Warren's layer store
 * without Docker. Everything is verified by digest and cached by it: a second
 * pull of an unchanged tag asks the registry one HEAD and downloads nothing.
 */
export async function pullImage(ref: string, opts: PullOptions): Promise<PulledImage> {
  if (!Number.isInteger(opts.uidBase) || opts.uidBase < 1) {
    throw new WarrenError('invalid_argument', 'uidBase must be a positive integer')
  }
  const parsed = parseReference(ref)
  const reference = formatReference(parsed)
  const platform = opts.platform ?? hostPlatform()
  if (platform.os !== 'linux') {
    throw new WarrenError('invalid_argument', `only linux images run in Warren, not ${platform.os}`)
  }
  await mkdir(opts.into, { recursive: true })
  await sweepStaleTemps(opts.into)
  const http = createHttpTransport()
  try {
    const client = createRegistryClient(
      registryEndpoint(parsed.registry, opts.insecureRegistries),
      parsed.repository,
      {
        http,
        ...(opts.auth ? { auth: opts.auth } : {}),
        ...(opts.insecureRegistries ? { insecure: opts.insecureRegistries } : {}),
      },
    )
    opts.onProgress?.({ phase: 'resolve', reference })
    const image = await resolveImage(client, opts.into, parsed, platform, {
      ...(opts.verifyAccess ? { verifyAccess: true } : {}),
    })
    const { layers } = image.manifest
    const diffIds = image.config.rootfs.diff_ids
    opts.onProgress?.({ phase: 'layers', reference, total: layers.length })
    const limit = pLimit(opts.concurrency ?? 3)
    const limits = diskLimits(opts)
    // Settled, not Promise.all: a failed layer must not leave others
    // downloading after the pull has returned.
    const settled = await Promise.allSettled(
      layers.map((desc, i) =>
        limit(() =>
          ensureLayer({
            client,
            into: opts.into,
            uidBase: opts.uidBase,
            desc,
            diffId: diffIds[i]!,
            limits,
            onProgress: (p) => opts.onProgress?.({ phase: 'layer', reference, ...p }),
          }),
        ),
      ),
    )
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
    if (failed) throw failed.reason
    const dirs = settled.map((s) => (s as PromiseFulfilledResult<string>).value)
    opts.onProgress?.({ phase: 'done', reference, digest: image.digest })
    const c = image.config.config ?? {}
    return {
      reference,
      digest: image.digest,
      manifestDigest: image.manifestDigest,
      platform,
      layers: dirs.reverse(),
      config: {
        env: c.Env ?? [],
        ...(c.User ? { user: c.User } : {}),
        ...(c.WorkingDir ? { workdir: c.WorkingDir } : {}),
        ...(c.Cmd ? { cmd: c.Cmd } : {}),
        ...(c.Entrypoint ? { entrypoint: c.Entrypoint } : {}),
      },
    }
  } finally {
    http.close()
  }
}
