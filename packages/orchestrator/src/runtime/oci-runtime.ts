import type { Isolation } from '@warren/shared'

export type ContainerStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped'

export interface ContainerState {
  id: string
  pid: number
  status: ContainerStatus
  bundle: string
}

/**
 * An OCI runtime as the node drives it: runc and runsc share this CLI shape
 * (run, state, list, delete, pause, resume), each with its own state
 * directory, so a container is only ever seen by the runtime that made it.
 */
export interface OciRuntime {
  readonly isolation: Isolation
  /** Starts a container detached; its first process writes to `logPath`. */
  runDetached(id: string, bundle: string, logPath: string): Promise<void>
  state(id: string): Promise<ContainerState | undefined>
  list(): Promise<ContainerState[]>
  /** Kills every process of the container and removes it; idempotent. */
  destroy(id: string): Promise<void>
  /** Stops every process where it is (a resume continues them). */
  pause(id: string): Promise<void>
  resume(id: string): Promise<void>
}
