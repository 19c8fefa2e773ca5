import { readFileSync } from 'node:fs'
import type { Isolation } from '@warren/shared'
import { GVISOR_PIDS_OVERHEAD, gvisorViewMounts } from './gvisor-spec.js'
import { LXCFS_FILES } from './lxcfs.js'
import { seccompProfile } from './seccomp.js'

/** Host /sys paths a sandbox may read: allocator tuning, nothing about devices. */
const HOST_SYS = ['/sys/kernel/mm/transparent_hugepage']

/** Mapped uid/gid range of every sandbox: root inside is `uidBase` on the host. */
export const UID_RANGE = 65536

/** Docker's default set: enough for package managers and servers, nothing that reaches the host. */
const CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
]

export interface SandboxSpecInput {
  hostname: string
  args: string[]
  env: string[]
  rootfs: string
  netnsPath: string
  cgroupsPath: string
  uidBase: number
  memoryMb: number
  cpuCount: number
  pidsLimit: number
  noNewPrivileges: boolean
  /** At most the host's own hard limit: a user namespace cannot raise it. */
  maxOpenFiles: number
  /** Read-only host paths mounted into the sandbox (the Node binary, envd). */
  readonlyMounts: Array<{ source: string; destination: string }>
  /** Volumes, mounted read-write (no set-uid programs, no device files). */
  volumeMounts: Array<{ source: string; destination: string }>
  /** LXCFS's mount root: its files replace the host's figures in /proc and /sys. */
  lxcfs: string | undefined
  /** runc unless said otherwise; gVisor gets its own /sys and no seccomp profile (see below). */
  isolation?: Isolation
}

/** The OCI runtime spec (config.json) of one sandbox. */
export function sandboxSpec(input: SandboxSpecInput): object {
  const gvisor = input.isolation === 'gvisor'
  const idMap = [{ containerID: 0, hostID: input.uidBase, size: UID_RANGE }]
  return {
    ociVersion: '1.0.2',
    hostname: input.hostname,
    root: { path: input.rootfs, readonly: false },
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: input.args,
      env: input.env,
      cwd: '/',
      capabilities: {
        bounding: CAPABILITIES,
        effective: CAPABILITIES,
        permitted: CAPABILITIES,
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: input.maxOpenFiles, soft: input.maxOpenFiles }],
      noNewPrivileges: input.noNewPrivileges,
      // The sandbox's own processes go first when its memory runs out.
      oomScoreAdj: 0,
    },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
      },
      {
        destination: '/dev/mqueue',
        type: 'mqueue',
        source: 'mqueue',
        options: ['nosuid', 'noexec', 'nodev'],
      },
      ...(gvisor ? gvisorViewMounts(input.rootfs) : hostViewMounts(input)),
      ...input.readonlyMounts.map((m) => ({
        destination: m.destination,
        type: 'bind',
        source: m.source,
        options: ['rbind', 'ro', 'nosuid', 'nodev'],
      })),
      ...input.volumeMounts.map((m) => ({
        destination: m.destination,
        type: 'bind',
        source: m.source,
        options: ['bind', 'rprivate', 'rw', 'nosuid', 'nodev'],
      })),
    ],
    linux: {
      uidMappings: idMap,
      gidMappings: idMap,
      namespaces: [
        { type: 'pid' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        { type: 'user' },
        { type: 'network', path: input.netnsPath },
      ],
      cgroupsPath: input.cgroupsPath,
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        memory: { limit: input.memoryMb * 2 ** 20, swap: input.memoryMb * 2 ** 20 },
        cpu: { quota: input.cpuCount * 100000, period: 100000 },
        // Under gVisor the host's pids count covers its own threads too.
        pids: { limit: input.pidsLimit + (gvisor ? GVISOR_PIDS_OVERHEAD : 0) },
      },
      // gVisor's kernel answers the sandbox's syscalls and its own filter
      // guards the host's; runsc ignores an OCI profile (unless told to apply
      // it inside, where it would guard nothing of the host's).
      ...(gvisor ? {} : { seccomp: seccompProfile() }),
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/proc/scsi',
      ],
      readonlyPaths: [
        '/proc/bus',
        '/proc/fs',
        '/proc/irq',
        '/proc/sys',
        '/proc/sysrq-trigger',
        '/sys',
      ],
    },
  }
}

/**
 * runc's view of the system. sysfs cannot be mounted fresh (the network
 * namespace belongs to the host's user namespace), and a bind of the host's
 * would show its block devices, PCI list and memory. An empty /sys
 * (read-only once the mounts are in) gets the cgroup tree, the CPU view and
 * THP settings; LXCFS's files replace the host's figures.
 */
function hostViewMounts(input: SandboxSpecInput): object[] {
  return [
    {
      destination: '/sys',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'noexec', 'nodev', 'mode=755', 'size=64k'],
    },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
    },
    ...HOST_SYS.map((path) => ({
      destination: path,
      type: 'bind',
      source: path,
      options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
    })),
    ...(input.lxcfs
      ? LXCFS_FILES.filter((f) => !HOST_SYS.includes(f)).map((f) => ({
          destination: f,
          type: 'bind',
          source: `${input.lxcfs}${f}`,
          options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
        }))
      : [
          {
            destination: '/sys/devices/system/cpu',
            type: 'bind',
            source: '/sys/devices/system/cpu',
            options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
          },
        ]),
  ]
}

let maxOpenFiles: number | undefined

/** The hard RLIMIT_NOFILE of this process, which sandboxes may not exceed (read once). */
export function hostMaxOpenFiles(): number {
  maxOpenFiles ??= readMaxOpenFiles()
  return maxOpenFiles
}

function readMaxOpenFiles(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'))
  const hard = Number(line?.trim().split(/\s+/)[4])
  return Number.isFinite(hard) && hard > 0 ? Math.min(hard, 1048576) : 1024
}
