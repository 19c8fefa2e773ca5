import { create } from '@bufbuild/protobuf'
import { z } from 'zod'
import {
  type NetworkConfig as NetworkConfigMessage,
  NetworkConfigSchema as NetworkConfigMessageSchema,
} from './gen/warren/orchestrator/v1/orchestrator_pb.js'

const MAX_RULES = 1000

const rules = (description?: string) => {
  const list = z.array(z.string()).max(MAX_RULES).optional()
  return description ? list.describe(description) : list
}

/**
 * A sandbox's network config as clients send it (E2B's fields plus Warren's
 * ingress rules): the one source of the `NetworkConfig` type. The API parses
 * request bodies and stored rows with it; the orchestrator receives it as a
 * proto message and converts it with `networkConfigFromMessage`. The rules
 * inside are validated by `parseNetworkConfig` (network-rules.ts).
 */
export const networkConfigSchema = z.strictObject({
  allowOut: rules(),
  denyOut: rules(),
  allowIn: rules('Warren: CIDR[:port[-port]] allowed in'),
  denyIn: rules('Warren: CIDR[:port[-port]] denied in'),
  allowPublicTraffic: z.boolean().optional(),
  maskRequestHost: z.string().max(253).optional(),
  httpsPorts: z
    .array(z.number().int().min(1).max(65535))
    .max(64)
    .optional()
    .describe('Ports whose server speaks HTTPS: the proxy reaches them over TLS, unverified'),
})

export type NetworkConfig = z.infer<typeof networkConfigSchema>

const LISTS = ['allowOut', 'denyOut', 'allowIn', 'denyIn'] as const

export function networkConfigToMessage(cfg: NetworkConfig): NetworkConfigMessage {
  return create(NetworkConfigMessageSchema, {
    allowOut: cfg.allowOut ?? [],
    denyOut: cfg.denyOut ?? [],
    allowIn: cfg.allowIn ?? [],
    denyIn: cfg.denyIn ?? [],
    ...(cfg.allowPublicTraffic !== undefined ? { allowPublicTraffic: cfg.allowPublicTraffic } : {}),
    ...(cfg.maskRequestHost !== undefined ? { maskRequestHost: cfg.maskRequestHost } : {}),
    httpsPorts: cfg.httpsPorts ?? [],
  })
}

/** Whether two configs say the same (an empty list is an absent one). */
export function sameNetworkConfig(a: NetworkConfig, b: NetworkConfig): boolean {
  const norm = (c: NetworkConfig) =>
    JSON.stringify([
      ...LISTS.map((k) => c[k] ?? []),
      c.allowPublicTraffic ?? null,
      c.maskRequestHost ?? null,
    ])
  return norm(a) === norm(b)
}

/** The config a message carries; an empty list means the same as an absent one. */
export function networkConfigFromMessage(msg: NetworkConfigMessage | undefined): NetworkConfig {
  const cfg: NetworkConfig = {}
  if (!msg) return cfg
  for (const key of LISTS) if (msg[key].length) cfg[key] = [...msg[key]]
  if (msg.allowPublicTraffic !== undefined) cfg.allowPublicTraffic = msg.allowPublicTraffic
  if (msg.maskRequestHost !== undefined) cfg.maskRequestHost = msg.maskRequestHost
  if (msg.httpsPorts.length) cfg.httpsPorts = [...msg.httpsPorts]
  return cfg
}
