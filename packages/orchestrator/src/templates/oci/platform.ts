import { WarrenError } from '@warren/shared'
import type { Descriptor, ImageIndex, Platform } from './manifest.js'

/** Node's process.arch → the OCI (GOARCH) name. */
const ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips64el: 'mips64le',
}

/** This machine's platform: what its kernel runs natively. */
export function hostPlatform(): Platform {
  const architecture = ARCH[process.arch] ?? process.arch
  if (architecture === 'arm64') return { os: 'linux', architecture, variant: 'v8' }
  if (architecture === 'arm') {
    const v = (process.config.variables as { arm_version?: string }).arm_version ?? '7'
    return { os: 'linux', architecture, variant: `v${v}` }
  }
  return { os: 'linux', architecture }
}

/** arm64 images often omit the variant: v8 is implied. */
function variantOf(p: Platform): string | undefined {
  return p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined)
}

export function platformMatches(have: Platform, want: Platform): boolean {
  if (have.os !== want.os || have.architecture !== want.architecture) return false
  const wanted = variantOf(want)
  return wanted === undefined || variantOf(have) === wanted
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/')
}

/**
 * The index entry for `want`. Entries without a platform (and attestation
 * manifests, which say `unknown/unknown`) are never chosen.
 */
export function choosePlatform(index: ImageIndex, want: Platform, what: string): Descriptor {
  const match = index.manifests.find((m) => m.platform && platformMatches(m.platform, want))
  if (match) return match
  const offered = index.manifests
    .map((m) => m.platform)
    .filter((p): p is Platform => !!p && p.os !== 'unknown')
    .map(formatPlatform)
  throw new WarrenError(
    'not_found',
    `${what} has no ${formatPlatform(want)} image (it offers: ${offered.join(', ') || 'none'})`,
  )
}
