import { describe, expect, it } from 'vitest'
import { GVISOR_PIDS_OVERHEAD } from './gvisor-spec.js'
import { type SandboxSpecInput, sandboxSpec } from './spec.js'

const input: SandboxSpecInput = {
  hostname: 'h',
  args: ['/opt/warren/bin/tini'],
  env: [],
  rootfs: '/data/sandboxes/x/rootfs',
  netnsPath: '/run/netns/wr-n1',
  cgroupsPath: '/warren/wr/x',
  uidBase: 100000,
  memoryMb: 512,
  cpuCount: 2,
  pidsLimit: 1024,
  noNewPrivileges: false,
  maxOpenFiles: 1024,
  readonlyMounts: [{ source: '/usr/bin/tini', destination: '/opt/warren/bin/tini' }],
  volumeMounts: [{ source: '/data/volumes/v/root', destination: '/data' }],
  lxcfs: '/var/lib/lxcfs',
}

type Spec = {
  mounts: Array<{ destination: string; type: string; source: string }>
  linux: { seccomp?: unknown; uidMappings: unknown; resources: { pids: { limit: number } } }
}

describe('the bundle under gVisor', () => {
  const runc = sandboxSpec(input) as Spec
  const gvisor = sandboxSpec({ ...input, isolation: 'gvisor' }) as Spec
  const dest = (s: Spec) => s.mounts.map((m) => `${m.type} ${m.destination}`)

  it('gets gVisor’s own sysfs and the root’s /tmp instead of the host-view mounts', () => {
    expect(dest(gvisor)).toContain('sysfs /sys')
    expect(gvisor.mounts.find((m) => m.destination === '/tmp')?.source).toBe(
      '/data/sandboxes/x/rootfs/tmp',
    )
    for (const m of gvisor.mounts) {
      expect(m.source.startsWith('/var/lib/lxcfs')).toBe(false)
      expect(m.type === 'cgroup' || m.destination === '/sys/kernel/mm/transparent_hugepage').toBe(
        false,
      )
    }
    // What both share is untouched: envd's and the volumes' binds, the user namespace.
    for (const d of ['bind /opt/warren/bin/tini', 'bind /data', 'proc /proc', 'devpts /dev/pts'])
      expect(dest(gvisor)).toContain(d)
    expect(gvisor.linux.uidMappings).toEqual(runc.linux.uidMappings)
  })

  it('carries no seccomp profile and counts gVisor’s own threads in the pids limit', () => {
    expect(runc.linux.seccomp).toBeDefined()
    expect(gvisor.linux.seccomp).toBeUndefined()
    expect(runc.linux.resources.pids.limit).toBe(1024)
    expect(gvisor.linux.resources.pids.limit).toBe(1024 + GVISOR_PIDS_OVERHEAD)
  })

  it('leaves the runc bundle as it was', () => {
    expect(sandboxSpec({ ...input, isolation: 'runc' })).toEqual(runc)
    expect(dest(runc)).toContain('tmpfs /sys')
    expect(dest(runc)).toContain('bind /proc/meminfo')
  })
})
