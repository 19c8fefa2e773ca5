// Pulling OCI/Docker images into Warren's layer store, without Docker.
export type { Credentials } from './auth.js'
export type { Platform } from './manifest.js'
export { hostPlatform } from './platform.js'
export {
  type ImageRunConfig,
  type PulledImage,
  type PullOptions,
  type PullProgress,
  pullImage,
} from './pull.js'
export { formatReference, type ImageReference, parseReference } from './reference.js'
export {
  prepareSandboxLayer,
  type SandboxLayer,
  type SandboxLayerOptions,
} from './sandbox-layer.js'
