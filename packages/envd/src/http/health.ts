import type { ServerResponse } from 'node:http'
import { sendNoContent } from './respond.js'

/** Liveness only: open without a token, answered before the rest of envd has loaded. */
export function handleHealth(res: ServerResponse): void {
  sendNoContent(res)
}
