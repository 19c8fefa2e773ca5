// Isolation of real sandboxes (privileged: runc, netns, nftables). A process
// in a sandbox sees only its own processes and files, reaches neither the
// host's services nor other sandboxes, and its root is not the host's root.
// Traffic goes only to loopback, this host's own 192.0.2.2 and the test's
// own sandbox namespaces.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import type { Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type SandboxRecord, TEMPLATES_DIR, useNodeFixture } from '../helpers/node-fixture.js'
import { underGvisor } from '../helpers/test-isolation.js'
import {
  hostBannerServer,
  hostGet,
  installProbe,
  probe,
  sh,
  shResult,
  startBannerServer,
  waitFor,
} from './helpers.js'

const HOST_ADDRESS = '192.0.2.2'

const fixture = useNodeFixture()
let a: SandboxRecord
let b: SandboxRecord
let sbxA: Sandbox
let sbxB: Sandbox

beforeAll(async () => {
  const f = fixture()
  ;[a, b] = await Promise.all([f.create(), f.create()])
  sbxA = f.sdk(a)
  sbxB = f.sdk(b)
  await Promise.all([installProbe(sbxA), installProbe(sbxB)])
})

describe('processes and files', () => {
  const tag = randomBytes(6).toString('hex')
  let marker: ChildProcess
  let markerDir: string

  beforeAll(() => {
    // A recognisable host process and a host file the sandbox must not see.
    marker = spawn('sleep', [`1${Number.parseInt(tag.slice(0, 6), 16)}`], { stdio: 'ignore' })
    markerDir = mkdtempSync('/tmp/warren-marker-')
    writeFileSync(join(markerDir, `secret-${tag}`), 'host secret\n')
  })
  afterAll(() => {
    marker?.kill('SIGKILL')
    if (markerDir) rmSync(markerDir, { recursive: true, force: true })
  })

  it('sees only its own processes, with tini as process 1', async () => {
    const ps = (await sh(sbxA, 'ps -eo pid=,args=')).trim().split('\n')
    expect(ps[0]).toMatch(/^\s*1 \/opt\/warren\/bin\/tini -- /)
    expect(ps.join('\n')).not.toContain(String(marker.spawnargs[1]))
    // tini, envd, the login shell and ps itself: nothing of the host's hundreds.
    expect(ps.length).toBeLessThanOrEqual(6)
    // A glob, not ls: gVisor refuses coreutils' statx flag (docs/architecture.md, "gVisor").
    const pids = (await sh(sbxA, "cd /proc && printf '%s\\n' [0-9]*")).trim().split('\n')
    expect(pids.length).toBeLessThanOrEqual(6)
    // ...and not the other sandbox's processes either.
    await sbxB.commands.run('sleep 300', { background: true })
    expect(await sh(sbxA, 'ps -eo args=')).not.toContain('sleep 300')
  })

  it("does not see the host's files", async () => {
    const secret = join(markerDir, `secret-${tag}`)
    expect(statSync(secret).isFile()).toBe(true)
    expect(await sh(sbxA, `test -e ${secret} && echo yes || echo no`, 'root')).toBe('no\n')
    expect(await sh(sbxA, 'test -e /work && echo yes || echo no', 'root')).toBe('no\n')
    const dataDir = fixture().dataDir
    expect(await sh(sbxA, `test -e ${dataDir} && echo yes || echo no`, 'root')).toBe('no\n')
    expect(await sh(sbxA, `find / -xdev -name 'secret-${tag}' 2>/dev/null; true`, 'root')).toBe('')
  })

  // runc's init is a host process; under gVisor the sandbox's processes are
  // gVisor's tasks and its uid_map is gVisor's own.
  it.skipIf(underGvisor)(
    "runs as an unprivileged host uid (sandbox root is the host's 100000)",
    async () => {
      const f = fixture()
      const state = execFileSync(
        'runc',
        ['--root', join(f.dataDir, 'runc'), 'state', a.containerId],
        { encoding: 'utf8' },
      )
      const init = (JSON.parse(state) as { pid: number }).pid
      expect(statSync(`/proc/${init}`).uid).toBe(100000)
      expect(readFileSync(`/proc/${init}/status`, 'utf8')).toMatch(/^Uid:\s+100000\s+100000\s/m)
      const map = (await sh(sbxA, 'cat /proc/self/uid_map', 'root')).trim().split(/\s+/)
      expect(map).toEqual(['0', '100000', '65536'])
    },
  )

  it('shares its host uid with other sandboxes, but that uid cannot reach the template layers', async () => {
    // Every sandbox maps root to host uid 100000 (docs/security.md says why).
    // What an escape as that uid could otherwise rewrite for every sandbox,
    // the shared read-only layers, is behind a root-only directory.
    const f = fixture()
    const build = JSON.parse(readFileSync(join(TEMPLATES_DIR, 'base/template.json'), 'utf8')) as {
      buildId: string
    }
    const file = join(TEMPLATES_DIR, 'base/builds', build.buildId, 'rootfs/etc/passwd')
    const asSandboxUid = spawnSync(
      'setpriv',
      ['--reuid=100000', '--regid=100000', '--clear-groups', 'cat', file],
      { encoding: 'utf8' },
    )
    expect(asSandboxUid.status).not.toBe(0)
    expect(asSandboxUid.stderr).toMatch(/Permission denied/)
    // Nor the data directory's listing, nor another sandbox's files.
    const asUid = (...cmd: string[]) =>
      spawnSync('setpriv', ['--reuid=100000', '--regid=100000', '--clear-groups', ...cmd])
    for (const dir of [f.dataDir, join(f.dataDir, 'sandboxes')])
      expect(asUid('ls', dir).status, dir).not.toBe(0)
    for (const name of ['sandbox.json', 'config.json', 'sandbox.log', 'disk.img']) {
      const path = join(f.dataDir, 'sandboxes', b.sandboxId, name)
      expect(asUid('cat', path).status, path).not.toBe(0)
    }
    // The sandbox itself reads them through its overlay.
    expect(await sh(sbxA, 'head -1 /etc/passwd')).toMatch(/^root:/)
  })
})

describe('network', () => {
  let loopbackOnly: Awaited<ReturnType<typeof hostBannerServer>>
  let anyAddress: Awaited<ReturnType<typeof hostBannerServer>>

  beforeAll(async () => {
    loopbackOnly = await hostBannerServer('127.0.0.1', 'host-loopback')
    anyAddress = await hostBannerServer('0.0.0.0', 'host-any')
  })
  afterAll(async () => {
    await loopbackOnly?.close()
    await anyAddress?.close()
  })

  it("reaches its own loopback at 127.0.0.1, never the host's", async () => {
    expect(await probe(sbxA, '127.0.0.1', loopbackOnly.port)).toBe('error:ECONNREFUSED')
    // The same port inside answers with the sandbox's own server.
    await startBannerServer(sbxA, '127.0.0.1', loopbackOnly.port, 'sandbox-loopback')
    expect(await probe(sbxA, '127.0.0.1', loopbackOnly.port)).toBe('connected:sandbox-loopback')
    expect(loopbackOnly.clients).toEqual([])
  })

  it('cannot reach host services on the veth or on the host address', async () => {
    // Positive control: the server does answer on those addresses from the host.
    expect(await hostProbe(HOST_ADDRESS, anyAddress.port)).toBe('host-any')
    expect(await hostProbe(a.hostIp, anyAddress.port)).toBe('host-any')
    const before = anyAddress.clients.length
    for (const host of [a.hostIp, HOST_ADDRESS]) {
      expect(await probe(sbxA, host, anyAddress.port)).not.toMatch(/^connected/)
      expect(await probe(sbxA, host, loopbackOnly.port)).not.toMatch(/^connected/)
    }
    expect(anyAddress.clients.slice(before)).toEqual([])
  })

  it('cannot reach another sandbox, which the host can reach', async () => {
    await sbxB.commands.run('python3 -m http.server 8000', { background: true, user: 'user' })
    await waitFor(async () => (await hostGet(`http://${b.sandboxIp}:8000/`)) === 200, 'B server')
    expect(await probe(sbxA, b.sandboxIp, 8000)).not.toMatch(/^connected/)
    expect(await probe(sbxA, b.sandboxIp, 49983)).not.toMatch(/^connected/)
    expect(await probe(sbxA, b.hostIp, 8000)).not.toMatch(/^connected/)
    expect(await hostGet(`http://${b.sandboxIp}:8000/`)).toBe(200)
  })
})

describe('privileges', () => {
  // gVisor ignores the OCI seccomp profile (its own filter guards the host's
  // kernel) and reports its own task status.
  it.skipIf(underGvisor)('runs with seccomp filtering and reduced capabilities', async () => {
    const status = await sh(sbxA, 'cat /proc/self/status', 'root')
    // Privileges can be gained (sudo is setuid), but only up to the sandbox's own root.
    expect(status).toMatch(/^NoNewPrivs:\s+0$/m)
    expect(status).toMatch(/^Seccomp:\s+2$/m)
    const capEff = BigInt(`0x${status.match(/^CapEff:\s+([0-9a-f]+)$/m)?.[1]}`)
    const has = (bit: number) => (capEff >> BigInt(bit)) & 1n
    // CAP_NET_ADMIN 12, CAP_SYS_MODULE 16, CAP_SYS_RAWIO 17, CAP_SYS_PTRACE 19, CAP_SYS_ADMIN 21
    for (const bit of [12, 16, 17, 19, 21]) expect(has(bit), `capability ${bit}`).toBe(0n)
    expect(has(0)).toBe(1n) // CAP_CHOWN, so it is root's set, reduced
  })

  // sudo does nothing under this gVisor (a known limit; root comes through envd's user).
  it.skipIf(underGvisor)(
    "gives the default user root through passwordless sudo, as E2B's base does",
    async () => {
      expect((await sh(sbxA, 'sudo -n whoami')).trim()).toBe('root')
      // Root's chores, through sudo: packages' files, accounts, ownership.
      await sh(
        sbxA,
        [
          "sudo sh -c 'echo deb http://deb.example.test/debian bookworm main > /etc/apt/sources.list.d/x.list'",
          'sudo useradd -m bob',
          'sudo mkdir -p /opt/app',
          'sudo chown user:user /opt/app',
          'sudo dpkg --configure -a',
        ].join(' && '),
      )
      expect((await sh(sbxA, 'id -u bob; stat -c %U /opt/app')).trim().split('\n')).toEqual([
        '1001',
        'user',
      ])
      const status = await sh(sbxA, 'sudo cat /proc/self/status')
      expect(status).toMatch(/^Seccomp:\s+2$/m)
      const capEff = BigInt(`0x${status.match(/^CapEff:\s+([0-9a-f]+)$/m)?.[1]}`)
      for (const bit of [12, 16, 17, 19, 21]) expect((capEff >> BigInt(bit)) & 1n).toBe(0n)
    },
  )

  // These calls are answered by gVisor's kernel, never reaching the host's (the
  // seccomp profile that refuses them under runc is not applied).
  it.skipIf(underGvisor)(
    'cannot open vsock, set NUMA policy or unsafe personality flags',
    async () => {
      const script = `import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
def call(*args):
    r = libc.syscall(*args)
    return 'ok' if r >= 0 else errno.errorcode[ctypes.get_errno()]
try:
    socket.socket(40, socket.SOCK_STREAM)
    vsock = 'ok'
except OSError as e:
    vsock = errno.errorcode[e.errno]
# personality: query and PER_LINUX are fine; ADDR_NO_RANDOMIZE and READ_IMPLIES_EXEC are not
print(vsock, call(135, 0xffffffff), call(135, 0), call(135, 0x0040000), call(135, 0x0400000),
      call(237, 0, 0, 0, 0, 0, 0), call(238, 0, 0, 0), call(279, 0, 0, 0, 0, 0, 0))
`
      await sbxA.files.write('/tmp/calls.py', script)
      // vsock; personality x4; mbind, set_mempolicy, move_pages
      expect((await sh(sbxA, 'python3 /tmp/calls.py', 'root')).trim()).toBe(
        'EAFNOSUPPORT ok ok EPERM EPERM EPERM EPERM EPERM',
      )
    },
  )

  it('cannot load kernel modules', async () => {
    const script = `import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def call(*args):
    r = libc.syscall(*args)
    return 'ok' if r == 0 else errno.errorcode[ctypes.get_errno()]
image = b'\\x7fELF' + b'\\0' * 60
fd = os.open('/bin/true', os.O_RDONLY)
print(call(175, image, len(image), b''), call(313, fd, b'', 0))
`
    await sbxA.files.write('/tmp/modules.py', script)
    expect((await sh(sbxA, 'python3 /tmp/modules.py', 'root')).trim()).toBe('EPERM EPERM')
  })

  it('cannot mount the host disk or make its device node', async () => {
    const mknod = await shResult(sbxA, 'mknod /tmp/vda b 254 0', 'root')
    expect(mknod.exitCode).not.toBe(0)
    const mountCmd = await shResult(
      sbxA,
      'mkdir -p /mnt/h && mount -t ext4 /dev/vda /mnt/h',
      'root',
    )
    expect(mountCmd.exitCode).not.toBe(0)
    const script = `import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
for src, fs in ((b'/dev/vda', b'ext4'), (b'none', b'tmpfs'), (b'/', b'none')):
    r = libc.mount(src, b'/mnt/h', fs, 4096 if fs == b'none' else 0, None)
    print('ok' if r == 0 else errno.errorcode[ctypes.get_errno()])
`
    await sbxA.files.write('/tmp/mount.py', script)
    expect((await sh(sbxA, 'python3 /tmp/mount.py', 'root')).trim().split('\n')).toEqual([
      'EPERM',
      'EPERM',
      'EPERM',
    ])
    // Nor gain a fresh user namespace in which it would be "root" again (under
    // gVisor one is gVisor's, and gives nothing of the host's kernel).
    if (!underGvisor)
      expect(
        (await shResult(sbxA, 'unshare --user --map-root-user true', 'root')).exitCode,
      ).not.toBe(0)
  })

  it("root through sudo reaches neither the host's services nor another sandbox, nor the kernel", async () => {
    // sudo does nothing under this gVisor (a known limit): there root comes through envd's user.
    const asRoot = (cmd: string) => (underGvisor ? sh(sbxA, cmd, 'root') : sh(sbxA, `sudo ${cmd}`))
    const server = await hostBannerServer('0.0.0.0', 'host-sudo')
    try {
      await sbxB.commands.run('python3 -m http.server 8001', { background: true })
      await waitFor(async () => (await hostGet(`http://${b.sandboxIp}:8001/`)) === 200, 'B')
      const viaSudo = async (host: string, port: number) =>
        (await asRoot(`python3 /tmp/probe.py ${host} ${port}`)).trim()
      for (const [host, port] of [
        [HOST_ADDRESS, server.port],
        [a.hostIp, server.port],
        [b.sandboxIp, 8001],
        [b.sandboxIp, 49983],
      ] as const) {
        expect(await viaSudo(host, port), `${host}:${port}`).not.toMatch(/^connected/)
      }
      expect(server.clients).toEqual([])
      expect((await asRoot('python3 /tmp/modules.py')).trim()).toBe('EPERM EPERM')
      expect((await asRoot('python3 /tmp/mount.py')).trim().split('\n')).toEqual([
        'EPERM',
        'EPERM',
        'EPERM',
      ])
    } finally {
      await server.close()
    }
  })
})

describe('what it learns of the host', () => {
  it('sees its own memory, uptime and an empty /sys', async () => {
    const memTotalKb = Number((await sh(sbxA, "awk '/^MemTotal/ {print $2}' /proc/meminfo")).trim())
    expect(memTotalKb).toBe(a.memoryMb * 1024)
    const free = (await sh(sbxA, "free -m | awk '/^Mem:/ {print $2}'")).trim()
    expect(Number(free)).toBe(a.memoryMb)
    const sandboxUptime = Number((await sh(sbxA, 'cut -d. -f1 /proc/uptime')).trim())
    const hostUptime = Number(readFileSync('/proc/uptime', 'utf8').split('.')[0])
    expect(sandboxUptime).toBeLessThan(Math.min(hostUptime, 600))
    // gVisor's /sys is its own synthetic sysfs (CPU topology, no host devices),
    // and coreutils' ls fails there (statx flag): the empty /sys is runc's.
    if (underGvisor) return
    expect((await sh(sbxA, 'ls /sys')).trim().split('\n').sort()).toEqual([
      'devices',
      'fs',
      'kernel',
    ])
    for (const path of ['/sys/block', '/sys/bus/pci', '/sys/class', '/sys/firmware']) {
      expect((await shResult(sbxA, `ls ${path}`, 'root')).exitCode, path).not.toBe(0)
    }
    // Nothing under /sys can be written, even by root.
    expect((await shResult(sbxA, 'touch /sys/x', 'root')).exitCode).not.toBe(0)
  })

  it("shows no host path of Warren's in its mountinfo", async () => {
    const mountinfo = await sh(sbxA, 'cat /proc/self/mountinfo')
    const f = fixture()
    for (const hostPath of [
      f.dataDir,
      f.cfg.templatesDir ?? '/var/lib/warren',
      '/var/lib/warren',
    ]) {
      expect(mountinfo).not.toContain(hostPath)
    }
    // Each layer by a short link of the sandbox's own (lowers.ts). Under gVisor
    // the root is served by its gofer (9p), the overlay is on the host side.
    if (!underGvisor) expect(mountinfo).toMatch(/ \/ \/ .* - overlay overlay .*lowerdir=l\/0[:,]/)
  })
})

/** Connects from the host and returns the banner (or the error code). */
function hostProbe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 2000 })
    let data = ''
    s.on('data', (d) => (data += d))
    s.on('end', () => resolve(data))
    s.on('timeout', () => {
      s.destroy()
      resolve('timeout')
    })
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`error:${e.code}`))
  })
}
