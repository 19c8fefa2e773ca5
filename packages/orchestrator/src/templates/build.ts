import { spawn } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { CleanupStack, WarrenError } from '@warren/shared'
import { run } from '../exec.js'
import { acquireDirLock } from '../host-lock.js'
import { type TemplateMetadata, templateMetadataSchema } from './metadata.js'
import { recipeHash, type TemplateRecipe } from './recipe.js'
import { shiftOwnership } from './shift.js'
import { buildDir, protectTemplates, readCurrent, templateDir, writeCurrent } from './store.js'

export interface BuildProgress {
  stage: 'resolve' | 'download' | 'unpack' | 'configure' | 'prepare' | 'done'
  /** Packages through the current stage, and how many there are (0 while unknown). */
  done: number
  total: number
  detail?: string
}

export interface BuildOptions {
  templatesDir: string
  uidBase: number
  envdVersion: string
  mirror?: string
  /** Rebuild even if the cached build matches the recipe. */
  force?: boolean
  onProgress?: (p: BuildProgress) => void
}

export interface BuildResult {
  metadata: TemplateMetadata
  /** False when the cached build already matched the recipe. */
  built: boolean
}

/**
 * Builds a template's root filesystem once per recipe: debootstrap into a
 * temporary directory, configure it, shift its ownership for the sandbox uid
 * mapping, then publish it with a rename so a half-built tree is never used.
 * Earlier builds are kept: running and paused sandboxes still stand on them.
 */
export async function buildTemplate(
  recipe: TemplateRecipe,
  opts: BuildOptions,
): Promise<BuildResult> {
  const buildId = recipeHash(recipe, opts.uidBase)
  const current = readCurrent(opts.templatesDir, recipe.templateId)
  const built = join(buildDir(opts.templatesDir, recipe.templateId, buildId), 'template.json')
  if (!opts.force && existsSync(built)) {
    if (current?.buildId === buildId) return { metadata: current, built: false }
    // Built before (another checkout switched away from it): make it current again.
    const metadata = templateMetadataSchema.parse(JSON.parse(readFileSync(built, 'utf8')))
    writeCurrent(opts.templatesDir, metadata)
    return { metadata, built: false }
  }
  protectTemplates(opts.templatesDir)
  mkdirSync(templateDir(opts.templatesDir, recipe.templateId), { recursive: true })
  const unlock = await acquireDirLock(
    templateDir(opts.templatesDir, recipe.templateId),
    '.build.lock',
    'template',
  )
  const cleanup = new CleanupStack()
  try {
    const tmp = join(
      templateDir(opts.templatesDir, recipe.templateId),
      `.tmp-${buildId}-${process.pid}`,
    )
    rmSync(tmp, { recursive: true, force: true })
    cleanup.push('temporary build', () => rmSync(tmp, { recursive: true, force: true }))
    const rootfs = join(tmp, 'rootfs')
    await mkdir(rootfs, { recursive: true })

    await debootstrap(
      recipe,
      rootfs,
      opts.mirror ?? 'http://deb.debian.org/debian',
      opts.onProgress,
    )
    opts.onProgress?.({ stage: 'prepare', done: 0, total: 0, detail: 'user, sudo, mount points' })
    await configureRootfs(recipe, rootfs)
    shiftOwnership(rootfs, opts.uidBase)

    const metadata: TemplateMetadata = {
      templateId: recipe.templateId,
      buildId,
      builtAt: new Date().toISOString(),
      cpuCount: recipe.defaults.cpuCount,
      memoryMB: recipe.defaults.memoryMB,
      diskSizeMB: recipe.defaults.diskSizeMB,
      pidsLimit: recipe.defaults.pidsLimit,
      defaultUser: recipe.user.name,
      defaultWorkdir: recipe.user.home,
      envdVersion: opts.envdVersion,
      uidBase: opts.uidBase,
      noNewPrivileges: recipe.noNewPrivileges,
    }
    writeFileSync(join(tmp, 'template.json'), `${JSON.stringify(metadata, null, 2)}\n`)
    const target = buildDir(opts.templatesDir, recipe.templateId, buildId)
    rmSync(target, { recursive: true, force: true })
    mkdirSync(dirname(target), { recursive: true })
    renameSync(tmp, target)
    cleanup.release()
    writeCurrent(opts.templatesDir, metadata)
    opts.onProgress?.({ stage: 'done', done: 1, total: 1 })
    return { metadata, built: true }
  } finally {
    await cleanup.run()
    await unlock()
  }
}

async function debootstrap(
  recipe: TemplateRecipe,
  rootfs: string,
  mirror: string,
  onProgress?: (p: BuildProgress) => void,
): Promise<void> {
  const args = [
    `--variant=${recipe.variant}`,
    `--include=${recipe.packages.join(',')}`,
    recipe.suite,
    rootfs,
    mirror,
  ]
  const child = spawn('debootstrap', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const tail: string[] = []
  let total = 0
  const counts = { download: 0, unpack: 0, configure: 0 }
  const lines = createInterface({ input: child.stdout })
  lines.on('line', (line) => {
    tail.push(line)
    if (tail.length > 20) tail.shift()
    // debootstrap's "I: Retrieving <pkg> <version>" lines name every package once.
    const m = /^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) (\S+)/.exec(line)
    if (!m) {
      onProgress?.({ stage: 'resolve', done: 0, total: 0, detail: line.replace(/^I: /, '') })
      return
    }
    const [, verb, pkg] = m
    if (
      verb === 'Retrieving' &&
      pkg !== 'Release' &&
      !pkg?.startsWith('Packages') &&
      !pkg?.startsWith('InRelease')
    ) {
      total = ++counts.download
      onProgress?.({ stage: 'download', done: counts.download, total: 0, detail: pkg })
    } else if (verb === 'Unpacking' || verb === 'Extracting') {
      counts.unpack = Math.min(counts.unpack + 1, total)
      onProgress?.({ stage: 'unpack', done: counts.unpack, total, detail: pkg })
    } else if (verb === 'Configuring') {
      counts.configure = Math.min(counts.configure + 1, total)
      onProgress?.({ stage: 'configure', done: counts.configure, total, detail: pkg })
    }
  })
  child.stderr.on('data', (b: Buffer) => {
    tail.push(b.toString().trim())
    if (tail.length > 20) tail.shift()
  })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  if (code !== 0) {
    throw new WarrenError('internal', `debootstrap failed (exit ${code}):\n${tail.join('\n')}`)
  }
}

/**
 * The Node.js Warren runs on, and the npm next to it, at /usr/local: the
 * Debian mirror's Node is older and its npm drags in hundreds of packages.
 */
async function installHostNode(rootfs: string): Promise<void> {
  const prefix = dirname(dirname(process.execPath))
  const npm = join(prefix, 'lib', 'node_modules', 'npm')
  await mkdir(join(rootfs, 'usr/local/bin'), { recursive: true })
  await run('cp', [process.execPath, join(rootfs, 'usr/local/bin/node')])
  if (!existsSync(npm)) throw new WarrenError('unavailable', `npm not found next to Node at ${npm}`)
  await mkdir(join(rootfs, 'usr/local/lib/node_modules'), { recursive: true })
  await run('cp', ['-a', npm, join(rootfs, 'usr/local/lib/node_modules/npm')])
  for (const [bin, cli] of [
    ['npm', 'npm-cli.js'],
    ['npx', 'npx-cli.js'],
  ] as const) {
    symlinkSync(`../lib/node_modules/npm/bin/${cli}`, join(rootfs, 'usr/local/bin', bin))
  }
}

async function configureRootfs(recipe: TemplateRecipe, rootfs: string): Promise<void> {
  const { user } = recipe
  const groups = user.sudo ? ['-G', 'sudo'] : []
  await run('chroot', [
    rootfs,
    'useradd',
    '-m',
    '-d',
    user.home,
    '-u',
    String(user.uid),
    '-U',
    '-s',
    '/bin/bash',
    ...groups,
    user.name,
  ])
  if (user.sudo) {
    const sudoers = join(rootfs, 'etc/sudoers.d', user.name)
    await writeFile(sudoers, `${user.name} ALL=(ALL:ALL) NOPASSWD: ALL\n`)
    await chmod(sudoers, 0o440)
  }
  // Mount points of the read-only host mounts, so that starting a sandbox
  // never has to create them in its writable layer.
  await mkdir(join(rootfs, 'opt/warren/envd'), { recursive: true })
  await mkdir(join(rootfs, 'opt/warren/bin'), { recursive: true })
  await writeFile(join(rootfs, 'opt/warren/bin/node'), '')
  await writeFile(join(rootfs, 'opt/warren/bin/tini'), '')
  // pip installs where E2B's does (Debian's marker would refuse it outside a venv).
  for (const marker of readdirSync(join(rootfs, 'usr/lib')).filter((d) => /^python3\.\d+$/.test(d)))
    rmSync(join(rootfs, 'usr/lib', marker, 'EXTERNALLY-MANAGED'), { force: true })
  if (recipe.hostNode) await installHostNode(rootfs)
  await run('chroot', [rootfs, 'apt-get', 'clean'])
  rmSync(join(rootfs, 'var/lib/apt/lists'), { recursive: true, force: true })
  await mkdir(join(rootfs, 'var/lib/apt/lists/partial'), { recursive: true })
}
