import type { EnvdState } from '../../state.js'
import type { ProcessRegistry } from './registry.js'

export interface ProcessDeps {
  state: EnvdState
  registry: ProcessRegistry
}
