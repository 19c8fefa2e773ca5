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
export function prepareFloor(): Floor {
  const cfg = loadOrchestratorConfig({ templatesDir: TEMPLATES_DIR }, {})
  const template = JSON.parse(readFileSync(join(TEMPLATES_DIR, 'base/template.json'), 'utf8')) as {
    buildId: string
    uidBase: number
    pidsLimit: number
    noNewPrivileges: boolean
  }
  const lower = join(TEMPLATES_DIR, 'base/builds', template.buildId, 'rootfs')
  const prefix = uniquePrefix()
  const dir = mkdtempSync(`/tmp/warren-${prefix}-`)
  chmodSync(dir, 0o711)
  const runcRoot = join(dir, 'runc')
  const rootfs = join(dir, 'rootfs')
  mkdirSync(rootfs)
  const spec = sandboxSpec({
    hostname: 'floor',
    args: ['/bin/true'],
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    rootfs,
    netnsPath: '',
    cgroupsPath: `/warren/${prefix}/floor`,
    uidBase: template.uidBase,
    memoryMb: 512,
    cpuCount: 2,
    pidsLimit: template.pidsLimit,
    noNewPrivileges: template.noNewPrivileges,
    maxOpenFiles: hostMaxOpenFiles(),
    lxcfs: undefined,
    volumeMounts: [],
    readonlyMounts: [
      { source: cfg.initPath, destination: '/opt/warren/bin/tini' },
      { source: cfg.nodePath, destination: '/opt/warren/bin/node' },
      { source: join(ROOT, 'packages/envd/dist/bundle'), destination: '/opt/warren/envd' },
    ],
  }) as { linux: { namespaces: Array<{ type: string }> } }
  spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network')
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
      execFileSync('mount', [
        '-t',
        'overlay',
        'overlay',
        '-o',
        `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
        rootfs,
      ])
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
