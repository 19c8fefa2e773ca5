import type { User } from '../../users.js'

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/**
 * A login-like environment: identity variables for the user, envd's PATH,
 * then the sandbox's variables from /init, then the request's own (later
 * wins). Nothing else of envd's environment leaks into user processes.
 */
export function processEnv(opts: {
  user: User
  cwd: string
  path: string | undefined
  sandboxVars: ReadonlyMap<string, string>
  requestVars: Readonly<Record<string, string>>
}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: opts.path || DEFAULT_PATH,
    HOME: opts.user.home,
    USER: opts.user.name,
    LOGNAME: opts.user.name,
    SHELL: opts.user.shell,
    PWD: opts.cwd,
  }
  for (const [k, v] of opts.sandboxVars) env[k] = v
  for (const [k, v] of Object.entries(opts.requestVars)) env[k] = v
  return env
}
