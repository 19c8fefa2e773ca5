/**
 * What /init configures. One instance per daemon, passed to every handler;
 * it starts empty (no token: every route is open until the orchestrator
 * initialises the sandbox).
 */
export interface EnvdState {
  accessToken: string | undefined
  envVars: Map<string, string>
  defaultUser: string
  defaultWorkdir: string | undefined
}

export function createState(): EnvdState {
  return {
    accessToken: undefined,
    envVars: new Map(),
    defaultUser: 'user',
    defaultWorkdir: undefined,
  }
}
