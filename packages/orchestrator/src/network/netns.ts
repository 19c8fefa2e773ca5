import { existsSync } from 'node:fs'
import { run } from '../exec.js'
import type { AddressSlot } from './address-pool.js'
import { applyInNetns } from './nftables.js'

export interface NetnsNames {
  netns: string
  hostIf: string
}

/** Host object names of a slot; interface names must stay within 15 characters. */
export function netnsNames(prefix: string, index: number): NetnsNames {
  return { netns: `${prefix}-n${index}`, hostIf: `${prefix}-v${index}` }
}

export function parseSlotIndex(prefix: string, name: string): number | undefined {
  const m = new RegExp(`^${prefix}-[nv](\\d+)$`).exec(name)
  return m ? Number(m[1]) : undefined
}

/**
 * Builds the namespace, the veth pair, addresses and routes, the sysctls, and
 * the initial rules. The caller undoes a failure with destroyNetns, which is
 * idempotent, so a half-built slot is removed the same way as a whole one.
 */
export async function createNetns(
  names: NetnsNames,
  slot: AddressSlot,
  table: string,
): Promise<void> {
  await run('ip', ['-batch', '-'], {
    input: [
      `netns add ${names.netns}`,
      `link add ${names.hostIf} type veth peer name eth0 netns ${names.netns}`,
      `addr add ${slot.hostIp}/30 dev ${names.hostIf}`,
      `link set ${names.hostIf} up`,
    ].join('\n'),
  })
  await run('ip', ['-n', names.netns, '-batch', '-'], {
    input: [
      `addr add ${slot.sandboxIp}/30 dev eth0`,
      'link set eth0 up',
      'link set lo up',
      `route add default via ${slot.hostIp}`,
    ].join('\n'),
  })
  // route_localnet lets the prerouting DNAT to 127.0.0.1 deliver; the port
  // threshold lets the unprivileged-in-the-host sandbox root bind ports < 1024
  // (the namespace is owned by the host user namespace, not the sandbox's).
  await run('nsenter', [
    `--net=/run/netns/${names.netns}`,
    'sh',
    '-c',
    'echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet && ' +
      'echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start && ' +
      "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range",
  ])
  await applyInNetns(names.netns, table)
}

export async function destroyNetns(names: NetnsNames): Promise<void> {
  // Deleting the host end removes the pair at once; the namespace itself is
  // freed asynchronously by the kernel once its last user is gone.
  await run('ip', ['link', 'del', names.hostIf], { okCodes: [1] })
  if (existsSync(`/run/netns/${names.netns}`)) {
    await run('ip', ['netns', 'del', names.netns], { okCodes: [1] })
  }
}

export async function listHostObjects(
  prefix: string,
): Promise<{ netns: string[]; links: string[] }> {
  const nsOut = await run('ip', ['-j', 'netns', 'list'])
  const netns = (nsOut.trim() ? (JSON.parse(nsOut) as Array<{ name: string }>) : [])
    .map((n) => n.name)
    .filter((n) => parseSlotIndex(prefix, n) !== undefined)
  const linkOut = await run('ip', ['-j', 'link', 'show', 'type', 'veth'])
  const links = (linkOut.trim() ? (JSON.parse(linkOut) as Array<{ ifname: string }>) : [])
    .map((l) => l.ifname)
    .filter((n) => parseSlotIndex(prefix, n) !== undefined)
  return { netns, links }
}

export async function hostIpv4Addresses(): Promise<string[]> {
  const out = await run('ip', ['-j', '-4', 'addr', 'show'])
  const ifaces = JSON.parse(out) as Array<{ addr_info?: Array<{ local: string }> }>
  return ifaces.flatMap((i) => (i.addr_info ?? []).map((a) => a.local))
}
