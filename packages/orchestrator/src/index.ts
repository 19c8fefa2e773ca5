export { type ServedNode, serveNode } from './cluster/serve.js'
export { nodeStatusSource } from './cluster/status.js'
export { templatesDirOf } from './context.js'
export { createNode, type NodeDeps } from './create-node.js'
export { envdSourceDir, envdVersionAt } from './envd-bundle.js'
export { createMachineHost, type MachineHost } from './host/machine.js'
export type { NodeHost } from './host/node-host.js'
export { type CreateInput, SandboxNode } from './node.js'
export {
  createNodeProxy,
  createNodeResolver,
  listenNodeProxy,
  localNode,
} from './nodeproxy/server.js'
export { inProcessTransport, serveOrchestratorRpc } from './rpc/server.js'
export { type BuildProgress, buildTemplate } from './templates/build.js'
export type { TemplateMetadata } from './templates/metadata.js'
export {
  formatReference,
  hostPlatform,
  type ImageReference,
  type ImageRunConfig,
  type PulledImage,
  type PullOptions,
  type PullProgress,
  parseReference,
  prepareSandboxLayer,
  pullImage,
  type SandboxLayer,
  type SandboxLayerOptions,
} from './templates/oci/index.js'
export { BASE_RECIPE, RECIPES, recipeHash } from './templates/recipe.js'
