import { isIPv4 } from 'node:net'
import { WarrenError } from './errors.js'

/** An IPv4 prefix as integers: the network address and the prefix length. */
export interface Cidr4 {
  readonly network: number
  readonly bits: number
}

export function ipv4ToInt(ip: string): number {
  if (!isIPv4(ip)) throw new WarrenError('invalid_argument', `invalid IPv4 address '${ip}'`)
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0)
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
}

/** Parses `a.b.c.d/n` or a bare address (meaning /32). Host bits must be zero. */
export function parseCidr4(value: string): Cidr4 {
  const [ip, len, extra] = value.split('/')
  const bits = len === undefined ? 32 : Number(len)
  if (extra !== undefined || !ip || !isIPv4(ip) || !/^\d{1,2}$/.test(len ?? '32') || bits > 32) {
    throw new WarrenError('invalid_argument', `invalid CIDR '${value}'`)
  }
  const addr = ipv4ToInt(ip)
  const network = (addr & maskOf(bits)) >>> 0
  if (network !== addr) {
    throw new WarrenError('invalid_argument', `CIDR '${value}' has host bits set`)
  }
  return { network, bits }
}

export function cidrToString(c: Cidr4): string {
  return `${intToIpv4(c.network)}/${c.bits}`
}

export function cidrContains(c: Cidr4, ip: number): boolean {
  return (ip & maskOf(c.bits)) >>> 0 === c.network
}

export function cidrSize(c: Cidr4): number {
  return 2 ** (32 - c.bits)
}
