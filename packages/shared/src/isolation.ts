import { z } from 'zod'

/**
 * How a sandbox is isolated from its host: `runc` (namespaces, seccomp and
 * cgroups on the shared kernel) or `gvisor` (runsc: a user-space kernel
 * between the sandbox and the host's). Warren's extension of E2B's create.
 */
export const ISOLATIONS = ['runc', 'gvisor'] as const
export const isolationSchema = z.enum(ISOLATIONS)
export type Isolation = z.infer<typeof isolationSchema>

/** The default of every sandbox that names none. */
export const DEFAULT_ISOLATION: Isolation = 'runc'

export function isIsolation(value: string): value is Isolation {
  return (ISOLATIONS as readonly string[]).includes(value)
}

/** A stored isolation column: null when it names none (or none Warren knows). */
export function storedIsolation(value: string | null): Isolation | null {
  return value !== null && isIsolation(value) ? value : null
}
