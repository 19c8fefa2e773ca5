import { loadApiConfig } from '@warren/shared'
import type { Command } from 'commander'
import { readFirstKey } from './first-key.js'

export interface Connection {
  apiUrl: string
  sandboxUrl: string
  apiKey: string
}

export interface ConnectionFlags {
  apiUrl?: string
  sandboxUrl?: string
  apiKey?: string
}

/** Flags shared by every command that talks to a running Warren. */
export function withConnectionFlags(cmd: Command): Command {
  return cmd
    .option('--api-url <url>', 'Warren API (default $E2B_API_URL or http://127.0.0.1:3000)')
    .option(
      '--sandbox-url <url>',
      'sandbox proxy (default $E2B_SANDBOX_URL or http://127.0.0.1:3002)',
    )
    .option(
      '--api-key <key>',
      'API key (default $E2B_API_KEY or the first key of a local warren up)',
    )
    .option('--json', 'machine-readable output')
}

/** Flags, then the e2b environment variables, then the local all-in-one's defaults. */
export function resolveConnection(flags: ConnectionFlags): Connection {
  const apiKey = flags.apiKey ?? process.env.E2B_API_KEY ?? readFirstKey(loadApiConfig().dataDir)
  if (!apiKey)
    throw new Error('no API key: pass --api-key, set E2B_API_KEY, or run `warren keys create`')
  return {
    apiUrl: flags.apiUrl ?? process.env.E2B_API_URL ?? 'http://127.0.0.1:3000',
    sandboxUrl: flags.sandboxUrl ?? process.env.E2B_SANDBOX_URL ?? 'http://127.0.0.1:3002',
    apiKey,
  }
}

/** Options for the e2b SDK pointing at this Warren. */
export function sdkOptions(c: Connection) {
  return { apiUrl: c.apiUrl, sandboxUrl: c.sandboxUrl, apiKey: c.apiKey }
}
