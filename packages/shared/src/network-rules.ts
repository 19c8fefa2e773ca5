import { isIPv6 } from 'node:net'
import { type Cidr4, cidrContains, ipv4ToInt, parseCidr4 } from './cidr.js'
import { WarrenError } from './errors.js'
import type { NetworkConfig } from './network-config.js'
import { ENVD_PORT } from './proxy/host.js'

/**
 * Network rules of a sandbox: parsing and validation (one place, used by the
 * API at its edge and by the node), and the pure decisions the enforcement
 * points make (nftables sets are rendered from the same parse).
 */

export interface DomainRules {
  /** Exact names, lower case. */
  exact: string[]
  /** `*.suffix` rules, stored as `suffix`: subdomains match, the apex does not. */
  suffixes: string[]
  /** `*`: every name. */
  any: boolean
}

export interface EgressPolicy {
  allow: Cidr4[]
  deny: Cidr4[]
  domains: DomainRules
  /** 0.0.0.0/0 is denied: only what is allowed goes out, and DNS answers only allowed names. */
  denyAll: boolean
}

export interface IngressRule {
  cidr: Cidr4
  fromPort: number
  toPort: number
}

export interface NetworkPolicy {
  egress: EgressPolicy
  ingress: { allow: IngressRule[]; deny: IngressRule[] }
  maskRequestHost?: string
  /** Ports the proxy reaches over TLS (E2B's `httpsPorts`), sorted, unique. */
  httpsPorts: number[]
}

const ALL: Cidr4 = { network: 0, bits: 0 }
// Underscores appear in real names (_dmarc, service records), so they are allowed.
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/

function bad(message: string): never {
  throw new WarrenError('invalid_argument', message)
}

function isCidrLike(entry: string): boolean {
  return /^[0-9.]+(\/\d{1,2})?$/.test(entry)
}

function parseIp(field: string, entry: string): Cidr4 {
  try {
    return parseCidr4(entry)
  } catch (err) {
    return bad(
      `${field}: '${entry}' is not a valid IPv4 address or CIDR (${(err as Error).message})`,
    )
  }
}

/** `example.com`, `*.example.com` or `*`, case-insensitive; a trailing dot is allowed. */
export function parseDomain(
  field: string,
  entry: string,
): { kind: 'exact' | 'suffix' | 'any'; name: string } {
  const name = entry.toLowerCase().replace(/\.$/, '')
  if (name === '*') return { kind: 'any', name: '*' }
  const wildcard = name.startsWith('*.')
  const base = wildcard ? name.slice(2) : name
  const labels = base.split('.')
  if (
    base.length > 253 ||
    labels.length < 1 ||
    !labels.every((l) => LABEL.test(l)) ||
    /^[0-9.]+$/.test(base)
  ) {
    return bad(
      `${field}: '${entry}' is not a valid domain (expected example.com, *.example.com or *)`,
    )
  }
  return { kind: wildcard ? 'suffix' : 'exact', name: base }
}

function list(field: string, value: string[] | undefined): string[] {
  const entries = value ?? []
  if (entries.length > 1000) bad(`${field}: at most 1000 entries`)
  for (const e of entries) {
    if (typeof e !== 'string' || !e.trim()) bad(`${field}: entries must be non-empty strings`)
    if (isIPv6(e.split('/')[0] ?? ''))
      bad(`${field}: '${e}' is IPv6; sandboxes have IPv4 egress only`)
  }
  return entries.map((e) => e.trim())
}

function parseEgress(cfg: NetworkConfig, allowInternetAccess: boolean | null): EgressPolicy {
  const deny = list('denyOut', cfg.denyOut).map((e) => {
    if (!isCidrLike(e))
      bad(`denyOut: '${e}' is not an IP or CIDR (domains are only allowed in allowOut)`)
    return parseIp('denyOut', e)
  })
  if (allowInternetAccess === false && !deny.some((c) => c.bits === 0)) deny.push(ALL)
  const allow: Cidr4[] = []
  const domains: DomainRules = { exact: [], suffixes: [], any: false }
  let firstDomain: string | undefined
  for (const e of list('allowOut', cfg.allowOut)) {
    if (isCidrLike(e)) {
      allow.push(parseIp('allowOut', e))
      continue
    }
    const d = parseDomain('allowOut', e)
    firstDomain ??= e
    if (d.kind === 'any') domains.any = true
    else if (d.kind === 'suffix') domains.suffixes.push(d.name)
    else domains.exact.push(d.name)
  }
  const denyAll = deny.some((c) => c.bits === 0)
  const hasDomains = domains.any || domains.exact.length > 0 || domains.suffixes.length > 0
  if (hasDomains && !denyAll) {
    bad(
      `allowOut: domain rules such as '${firstDomain}' require '0.0.0.0/0' in denyOut (or allow_internet_access: false)`,
    )
  }
  return { allow, deny, domains, denyAll }
}

/** `CIDR[:port[-port]]` */
export function parseIngressRule(field: string, entry: string): IngressRule {
  const [cidrPart, portPart, extra] = entry.split(':')
  if (extra !== undefined || !cidrPart || !isCidrLike(cidrPart)) {
    bad(`${field}: '${entry}' is not CIDR[:port[-port]]`)
  }
  let cidr: Cidr4
  try {
    cidr = parseCidr4(cidrPart)
  } catch (err) {
    return bad(`${field}: '${entry}' has an invalid CIDR (${(err as Error).message})`)
  }
  if (portPart === undefined) return { cidr, fromPort: 1, toPort: 65535 }
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(portPart)
  const fromPort = Number(m?.[1])
  const toPort = m?.[2] === undefined ? fromPort : Number(m[2])
  if (!m || fromPort < 1 || toPort > 65535 || fromPort > toPort) {
    bad(`${field}: '${entry}' has an invalid port or range (1-65535, from <= to)`)
  }
  return { cidr, fromPort, toPort }
}

export function validateMaskHost(mask: string): string {
  const probe = mask.replaceAll('${PORT}', '1')
  const m = /^([a-zA-Z0-9.-]{1,253})(?::(\d{1,5}))?$/.exec(probe)
  const labelsOk = m?.[1]?.split('.').every((l) => /^(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$/.test(l))
  if (!m || !labelsOk || (m[2] !== undefined && Number(m[2]) > 65535)) {
    bad(
      `maskRequestHost: '${mask}' is not a host[:port] (\${PORT} is replaced by the sandbox port)`,
    )
  }
  return mask
}

/** E2B's rule: envd's own port is plain HTTP and cannot be listed. */
function parseHttpsPorts(ports: number[] | undefined): number[] {
  for (const p of ports ?? []) {
    if (!Number.isInteger(p) || p < 1 || p > 65535)
      bad(`httpsPorts: '${p}' is not a port (1-65535)`)
    if (p === ENVD_PORT) bad(`httpsPorts: envd's port ${ENVD_PORT} cannot be listed`)
  }
  return [...new Set(ports ?? [])].sort((a, b) => a - b)
}

/** Parses and validates a whole network config; every failure names the bad entry. */
export function parseNetworkConfig(
  cfg: NetworkConfig,
  allowInternetAccess: boolean | null = null,
): NetworkPolicy {
  const egress = parseEgress(cfg, allowInternetAccess)
  const allowIn = list('allowIn', cfg.allowIn).map((e) => parseIngressRule('allowIn', e))
  const denyIn = list('denyIn', cfg.denyIn).map((e) => parseIngressRule('denyIn', e))
  if (allowIn.length && !denyIn.some((r) => r.cidr.bits === 0)) {
    bad(`allowIn: ingress allow rules such as '${cfg.allowIn?.[0]}' require '0.0.0.0/0' in denyIn`)
  }
  const policy: NetworkPolicy = {
    egress,
    ingress: { allow: allowIn, deny: denyIn },
    httpsPorts: parseHttpsPorts(cfg.httpsPorts),
  }
  if (cfg.maskRequestHost !== undefined)
    policy.maskRequestHost = validateMaskHost(cfg.maskRequestHost)
  return policy
}

/** Whether a name may be reached through the egress proxy (and resolved by Warren's DNS). */
export function domainAllowed(rules: DomainRules, name: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '')
  if (rules.any) return true
  if (rules.exact.includes(n)) return true
  return rules.suffixes.some((s) => n.endsWith(`.${s}`))
}

/** Allow wins over deny; what neither names is allowed. */
export function egressAllowsIp(policy: EgressPolicy, ip: string): boolean {
  const n = ipv4ToInt(ip)
  if (policy.allow.some((c) => cidrContains(c, n))) return true
  return !policy.deny.some((c) => cidrContains(c, n))
}

/**
 * Whether a client may reach `port`. Allow wins over deny. A client whose
 * address cannot be told (missing, or IPv6 against IPv4 rules) is refused
 * whenever any deny rule could apply: fail closed.
 */
export function ingressAllows(
  policy: NetworkPolicy['ingress'],
  clientIp: string | undefined,
  port: number,
): boolean {
  const applies = (r: IngressRule) => port >= r.fromPort && port <= r.toPort
  const deny = policy.deny.filter(applies)
  if (!deny.length) return true
  const ip = clientIp?.replace(/^::ffff:/, '')
  if (!ip || !/^[0-9.]+$/.test(ip)) return false
  const n = ipv4ToInt(ip)
  if (policy.allow.some((r) => applies(r) && cidrContains(r.cidr, n))) return true
  return !deny.some((r) => cidrContains(r.cidr, n))
}

export function maskedHost(mask: string, port: number): string {
  return mask.replaceAll('${PORT}', String(port))
}

/** Whether the sandbox has any egress rule of its own (else the base table applies). */
export function hasEgressRules(policy: EgressPolicy): boolean {
  return policy.allow.length > 0 || policy.deny.length > 0 || hasDomainRules(policy)
}

export function hasDomainRules(policy: EgressPolicy): boolean {
  return policy.domains.any || policy.domains.exact.length > 0 || policy.domains.suffixes.length > 0
}
