/**
 * The seccomp profile of every sandbox: allow by default and refuse what
 * container runtimes conventionally refuse — kernel modules, kexec, mounts and
 * namespace changes, keyrings, clock and swap changes, raw I/O ports, BPF and
 * perf, userfaultfd, io_uring, NUMA memory policy, vsock sockets (a path to
 * the hypervisor) and personality flags beyond the harmless ones. Denied
 * calls fail with EPERM; io_uring and clone3 fail with ENOSYS so that libc
 * and libuv fall back quietly; vsock looks like an unsupported family.
 */
const EPERM = 1
const ENOSYS = 38
const EAFNOSUPPORT = 97
const AF_VSOCK = 40

const DENIED = [
  'acct',
  'add_key',
  'bpf',
  'clock_adjtime',
  'clock_settime',
  'create_module',
  'delete_module',
  'finit_module',
  'fsconfig',
  'fsmount',
  'fsopen',
  'fspick',
  'get_kernel_syms',
  'init_module',
  'ioperm',
  'iopl',
  'kcmp',
  'kexec_file_load',
  'kexec_load',
  'keyctl',
  'lookup_dcookie',
  'mbind',
  'migrate_pages',
  'mount',
  'mount_setattr',
  'move_mount',
  'move_pages',
  'name_to_handle_at',
  'nfsservctl',
  'open_by_handle_at',
  'open_tree',
  'perf_event_open',
  'pivot_root',
  'query_module',
  'quotactl',
  'quotactl_fd',
  'reboot',
  'request_key',
  'set_mempolicy',
  'set_mempolicy_home_node',
  'setns',
  'settimeofday',
  'stime',
  'swapoff',
  'swapon',
  'syslog',
  '_sysctl',
  'sysfs',
  'umount',
  'umount2',
  'unshare',
  'uselib',
  'userfaultfd',
  'ustat',
  'vm86',
  'vm86old',
]

/** CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME */
const CLONE_NAMESPACE_FLAGS = [
  0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080,
]

const BIT31 = 2 ** 31
/** personality() values Docker allows: PER_LINUX, PER_LINUX32, UNAME26 (and both), the query. */
const PERSONALITY_BITS = new Set([3, 17])

/**
 * Rules refusing every personality() argument but 0, 0x8, 0x20000, 0x20008
 * and 0xffffffff. Seccomp compares one argument once per rule (rules are
 * OR-ed), and a refusal that matches wins over any allow; so each rule
 * refuses a bit pattern none of those values has: a flag bit other than 3 and
 * 17 set while bit 31 is clear; bit 31 set while some lower bit is clear.
 * The kernel reads only the low 32 bits, so the masks ignore the rest.
 */
function personalityRules(): object[] {
  const refuse = (value: number, mask: number) => ({
    names: ['personality'],
    action: 'SCMP_ACT_ERRNO',
    errnoRet: EPERM,
    args: [{ index: 0, value: mask, valueTwo: value, op: 'SCMP_CMP_MASKED_EQ' }],
  })
  const bits = Array.from({ length: 31 }, (_, b) => 2 ** b)
  return [
    ...bits.filter((_, b) => !PERSONALITY_BITS.has(b)).map((bit) => refuse(bit, bit + BIT31)),
    ...bits.map((bit) => refuse(BIT31, bit + BIT31)),
  ]
}

export function seccompProfile(): object {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: DENIED, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
      {
        names: ['clone3', 'io_uring_setup', 'io_uring_enter', 'io_uring_register'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: ENOSYS,
      },
      // clone() with any namespace flag: one rule per flag, since rules are
      // OR-ed and the arguments within one rule are AND-ed.
      ...CLONE_NAMESPACE_FLAGS.map((flag) => ({
        names: ['clone'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EPERM,
        args: [{ index: 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }],
      })),
      {
        names: ['socket'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EAFNOSUPPORT,
        args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_EQ' }],
      },
      ...personalityRules(),
    ],
  }
}
