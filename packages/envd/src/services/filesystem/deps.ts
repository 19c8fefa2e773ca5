import type { EnvdState } from '../../state.js'
import type { WatcherStore } from './watchers.js'

export interface FilesystemDeps {
  state: EnvdState
  watchers: WatcherStore
}
