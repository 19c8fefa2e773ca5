import type { ServerResponse } from 'node:http'
import type { EnvdState } from '../state.js'
import { sendJson } from './respond.js'

/** The sandbox's environment variables as set by /init. */
export function handleEnvs(res: ServerResponse, state: EnvdState): void {
  sendJson(res, 200, Object.fromEntries(state.envVars))
}
