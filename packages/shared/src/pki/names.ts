import { isIP } from 'node:net'
import { AsnConvert } from '@peculiar/asn1-schema'
import {
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_nameConstraints,
  NameConstraints,
} from '@peculiar/asn1-x509'
import { WarrenError } from '../errors.js'
import { x509 } from './x509.js'

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/

/** A DNS name a certificate may carry: lowercase LDH labels, optionally `*.` in front. */
export function checkDnsName(name: string, opts: { wildcard?: boolean } = {}): string {
  const lower = name.toLowerCase()
  const labels = (opts.wildcard && lower.startsWith('*.') ? lower.slice(2) : lower).split('.')
  if (lower.length > 253 || !labels.every((l) => LABEL.test(l))) {
    throw new WarrenError('invalid_argument', `not a DNS name: ${JSON.stringify(name)}`)
  }
  return lower
}

export function checkIpAddress(address: string): string {
  if (!isIP(address)) {
    throw new WarrenError('invalid_argument', `not an IP address: ${JSON.stringify(address)}`)
  }
  return address
}

/**
 * What a CA may vouch for (RFC 5280 name constraints): DNS names at or under
 * `dns` entries, IP addresses inside `ipRanges` (CIDRs). A CA that users add
 * to their trust store should be held to exactly the names it serves, so
 * that its key, were it stolen, could not impersonate anything else.
 */
export interface PermittedNames {
  dns?: readonly string[]
  ipRanges?: readonly string[]
}

/** The critical name-constraints extension permitting exactly `permitted`. */
export function nameConstraintsExtension(permitted: PermittedNames): x509.Extension {
  const subtrees: GeneralSubtree[] = []
  for (const name of permitted.dns ?? []) {
    subtrees.push(new GeneralSubtree({ base: new GeneralName({ dNSName: checkDnsName(name) }) }))
  }
  for (const range of permitted.ipRanges ?? []) {
    const [address, bits] = range.split('/')
    const max = isIP(address ?? '') === 6 ? 128 : 32
    if (!address || !checkIpAddress(address) || !/^\d+$/.test(bits ?? '') || Number(bits) > max) {
      throw new WarrenError('invalid_argument', `not a CIDR: ${JSON.stringify(range)}`)
    }
    // The asn1 schema encodes `address/bits` as the address and its mask.
    subtrees.push(new GeneralSubtree({ base: new GeneralName({ iPAddress: range }) }))
  }
  if (!subtrees.length) throw new WarrenError('invalid_argument', 'no permitted names')
  const value = AsnConvert.serialize(
    new NameConstraints({ permittedSubtrees: new GeneralSubtrees(subtrees) }),
  )
  return new x509.Extension(id_ce_nameConstraints, true, value)
}

/** Whether a CA's name constraints, if it has any, let it vouch for a DNS name. */
export function permitsDnsName(ca: x509.X509Certificate, name: string): boolean {
  const ext = ca.getExtension(id_ce_nameConstraints)
  if (!ext) return true
  const nc = AsnConvert.parse(ext.value, NameConstraints)
  const host = name.toLowerCase()
  // RFC 5280: `b` covers b and its subdomains; `.b` only its subdomains.
  const within = (b: string) =>
    b.startsWith('.') ? host.endsWith(b) : host === b || host.endsWith(`.${b}`)
  const bases = (subtrees?: GeneralSubtrees) =>
    (subtrees ?? []).flatMap((s) => (s.base.dNSName ? [s.base.dNSName.toLowerCase()] : []))
  if (bases(nc.excludedSubtrees).some(within)) return false
  const permitted = bases(nc.permittedSubtrees)
  return !permitted.length || permitted.some(within)
}
