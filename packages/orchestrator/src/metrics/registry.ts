import { Gauge, Registry } from 'prom-client'
import type { SandboxNode } from '../node.js'

/**
 * Sandboxes one node exports series for. Each sandbox adds a fixed set of
 * series (labels: sandbox id and template id only), and they are made
 * afresh at every scrape from the sandboxes the node holds then, so a
 * sandbox's series go with it. Past this many, the rest are left out and
 * counted in `warren_node_sandbox_series_dropped`.
 */
export const MAX_SANDBOX_SERIES = 1000

/**
 * The node's Prometheus metrics, read at scrape time from what the kernel
 * counts (the same cgroup and disk figures as `GET /sandboxes/{id}/metrics`,
 * plus the sandbox's veth counters) and from the node's own books
 * (capacity, what is promised, sandboxes by state, the slot and address
 * pools).
 */
export function nodeMetrics(node: SandboxNode): Registry {
  const registry = new Registry()
  const gauges: Gauge[] = []
  const gauge = (name: string, help: string, labelNames: string[]) => {
    // The registry collects in the order of registration: the first gauge's
    // collect reads everything once per scrape.
    const first = !gauges.length
    const g = new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      ...(first ? { collect: () => refresh() } : {}),
    })
    gauges.push(g)
    return g
  }

  const sandbox = ['sandbox_id', 'template_id']
  const perSandbox = {
    cpu: gauge('warren_sandbox_cpu_seconds_total', 'CPU time used by the sandbox', sandbox),
    memory: gauge('warren_sandbox_memory_bytes', 'Memory the sandbox holds', sandbox),
    memoryLimit: gauge('warren_sandbox_memory_limit_bytes', "The sandbox's memory limit", sandbox),
    disk: gauge('warren_sandbox_disk_used_bytes', "What the sandbox's disk holds", sandbox),
    diskTotal: gauge('warren_sandbox_disk_size_bytes', "The sandbox's disk size", sandbox),
    rx: gauge('warren_sandbox_network_receive_bytes_total', 'Bytes the sandbox received (its veth)', sandbox),
    tx: gauge('warren_sandbox_network_transmit_bytes_total', 'Bytes the sandbox sent (its veth)', sandbox),
  } // biome-ignore format: a table
  const dropped = gauge(
    'warren_node_sandbox_series_dropped',
    `Sandboxes left out of the per-sandbox series (more than ${MAX_SANDBOX_SERIES})`,
    [],
  )
  const perNode = {
    cpus: gauge('warren_node_cpus', "The node's CPUs", []),
    cpusAllocated: gauge('warren_node_cpus_allocated', 'CPUs promised to running and frozen sandboxes', []),
    memory: gauge('warren_node_memory_bytes', 'Memory the node hands out', []),
    memoryAllocated: gauge('warren_node_memory_allocated_bytes', 'Memory promised to sandboxes', []),
    sandboxes: gauge('warren_node_sandboxes', 'Sandboxes on the node, by state', ['state']),
    slotsReady: gauge('warren_node_network_slots_ready', 'Network namespaces built ahead for creates', []),
    addressesFree: gauge('warren_node_addresses_free', 'Sandbox addresses left in the pool', []),
    warm: gauge('warren_node_warm_sandboxes', 'Warm sandboxes ready to be claimed, by template', ['template_id']),
  } // biome-ignore format: a table

  function refresh(): void {
    for (const g of gauges) g.reset()
    const info = node.info()
    perNode.cpus.set(info.cpuCount)
    perNode.cpusAllocated.set(info.cpuAllocated)
    perNode.memory.set(info.memoryMbTotal * 2 ** 20)
    perNode.memoryAllocated.set(info.memoryMbAllocated * 2 ** 20)
    perNode.slotsReady.set(node.readySlots())
    perNode.addressesFree.set(info.addressesFree)
    for (const [templateId, n] of Object.entries(info.warm))
      perNode.warm.set({ template_id: templateId }, n)
    const records = node.list()
    for (const state of ['running', 'paused'] as const)
      perNode.sandboxes.set({ state }, records.filter((r) => r.state === state).length)
    const all = node.figures()
    dropped.set(Math.max(0, all.length - MAX_SANDBOX_SERIES))
    for (const { record, figures: f } of all.slice(0, MAX_SANDBOX_SERIES)) {
      const l = { sandbox_id: record.sandboxId, template_id: record.templateId }
      perSandbox.cpu.set(l, f.cpuSeconds)
      perSandbox.memory.set(l, f.memoryBytes)
      perSandbox.memoryLimit.set(l, f.memoryLimitBytes)
      perSandbox.disk.set(l, f.diskUsedBytes)
      perSandbox.diskTotal.set(l, f.diskTotalBytes)
      perSandbox.rx.set(l, f.networkReceiveBytes)
      perSandbox.tx.set(l, f.networkTransmitBytes)
    }
  }
  return registry
}
