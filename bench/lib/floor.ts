// The floor every create is compared with: a raw `runc run` of /bin/true on
// the same template, with the sandbox's own OCI spec, measured in the same run.
import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { loadOrchestratorConfig } from '@warren/shared'
import { hostMaxOpenFiles, sandboxSpec } from '../../packages/orchestrator/dist/runtime/spec.js'
import { cleanupHost, TEMPLATES_DIR, uniquePrefix } from '../../tests/helpers/node-fixture.js'

const ROOT = resolve(import.meta.dirname, '../..')
const now = () => performance.now()

export function run(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore' })
    child.once('error', reject)
    child.once('exit', (code) => resolveRun(code ?? -1))
  })
}

export interface Floor {
  /** One timed run: runc alone, and with the overlay mount and unmount around it. */
  once(): Promise<{ runc: number; withOverlay: number }>
  close(): Promise<void>
}

/**
 * `runc run` of /bin/true with the sandbox's own OCI spec (same overlay over
 * the template, user namespace mapping, cgroups, seccomp, read-only mounts)
 * minus the network namespace. runc run in the foreground also deletes the
 * container when /bin/true exits, which the floor therefore includes.
 */
/** The base template as its files lie on this host: its metadata and its root filesystem. */
export function baseTemplate() {
  const template = JSON.parse(readFileSync(join(TEMPLATES_DIR, 'base/template.json'), 'utf8')) as {
    buildId: string
    uidBase: number
    pidsLimit: number
    noNewPrivileges: boolean
  }
  return { ...template, lower: join(TEMPLATES_DIR, 'base/builds', template.buildId, 'rootfs') }
}

/**
 * A sandbox's own OCI spec for a container of the base template without a
 * network namespace: `args` run on `rootfs` (an overlay of the template, see
 * mountOverlay) in the cgroup `cgroupsPath`.
 */
export function bareSpec(
  template: ReturnType<typeof baseTemplate>,
  c: {
    hostname: string
    args: string[]
    rootfs: string
    cgroupsPath: string
    memoryMb: number
    readonlyMounts: Array<{ source: string; destination: string }>
    isolation?: 'gvisor'
  },
): object {
  const spec = sandboxSpec({
    ...c,
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    netnsPath: '',
    uidBase: template.uidBase,
    cpuCount: 2,
    pidsLimit: template.pidsLimit,
    noNewPrivileges: template.noNewPrivileges,
    maxOpenFiles: hostMaxOpenFiles(),
    lxcfs: undefined,
    volumeMounts: [],
  }) as { linux: { namespaces: Array<{ type: string }> } }
  spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network')
  return spec
}

/** Mounts the template's files at `rootfs` with `upper` as their writable layer. */
export function mountOverlay(
  template: ReturnType<typeof baseTemplate>,
  dirs: { upper: string; work: string; rootfs: string },
): void {
  execFileSync('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${template.lower},upperdir=${dirs.upper},workdir=${dirs.work}`,
    dirs.rootfs,
  ])
}

export function prepareFloor(): Floor {
  const cfg = loadOrchestratorConfig({ templatesDir: TEMPLATES_DIR }, {})
  const template = baseTemplate()
  const prefix = uniquePrefix()
  const dir = mkdtempSync(`/tmp/warren-${prefix}-`)
  chmodSync(dir, 0o711)
  const runcRoot = join(dir, 'runc')
  const rootfs = join(dir, 'rootfs')
  mkdirSync(rootfs)
  const spec = bareSpec(template, {
    hostname: 'floor',
    args: ['/bin/true'],
    rootfs,
    cgroupsPath: `/warren/${prefix}/floor`,
    memoryMb: 512,
    readonlyMounts: [
      { source: cfg.initPath, destination: '/opt/warren/bin/tini' },
      { source: cfg.nodePath, destination: '/opt/warren/bin/node' },
      { source: join(ROOT, 'packages/envd/dist/bundle'), destination: '/opt/warren/envd' },
    ],
  })
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec))

  let n = 0
  return {
    async once() {
      const upper = join(dir, `upper${n}`)
      const work = join(dir, `work${n++}`)
      mkdirSync(upper)
      chownSync(upper, template.uidBase, template.uidBase)
      mkdirSync(work)
      const t0 = now()
      mountOverlay(template, { upper, work, rootfs })
      const t1 = now()
      const code = await run('runc', [
        '--root',
        runcRoot,
        'run',
        '--bundle',
        dir,
        `${prefix}-floor`,
      ])
      const t2 = now()
      execFileSync('umount', [rootfs])
      const t3 = now()
      execFileSync('rm', ['-rf', upper, work])
      if (code !== 0) throw new Error(`runc run exited ${code}`)
      return { runc: t2 - t1, withOverlay: t3 - t0 }
    },
    async close() {
      await run('runc', ['--root', runcRoot, 'delete', '--force', `${prefix}-floor`])
      await run('umount', [rootfs])
      await cleanupHost(prefix, dir)
    },
  }
}
