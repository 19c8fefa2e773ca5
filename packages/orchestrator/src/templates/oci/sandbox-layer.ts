import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, lchown, mkdir, rm, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Account, type AccountFiles, addAccount, sudoersEntry } from './accounts.js'
import { ImageView } from './image-view.js'
import { inspectRuntime, type Libc } from './inspect.js'
import { lstatOrNull } from './layer-fs.js'
import { LAYER_FORMAT, makeTempDir, publishDir, shared } from './layout.js'

export interface SandboxLayerOptions {
  into: string
  /** The image's layers, top first, relative to `into` (as pullImage returns them). */
  layers: string[]
  uidBase: number
  /** The account sandboxes run commands as; default E2B's: `user`, uid 1000, /home/user. */
  user?: { name: string; uid: number; home: string }
}

export interface SandboxLayer {
  /** The extra layer, relative to `into`: it goes on top of the image's layers. */
  layer: string
  user: Account
  libc: Libc
  /** Whether the host's Node (envd) can run on this image's libraries. */
  envdRunnable: boolean
  /** What the image lacks or what was left as it was, for the build log. */
  notes: string[]
}

const DEFAULT_USER = { name: 'user', uid: 1000, home: '/home/user' }
const SKEL = ['.bashrc', '.profile', '.bash_logout']

/**
 * The small layer that makes a pulled image a Warren sandbox, as E2B's
 * builder does for its templates: an account (`user`, passwordless sudo)
 * written into /etc/passwd, group, shadow, gshadow and /etc/sudoers.d as
 * text, a home directory, and the mount points of envd, Node and tini.
 * Nothing of the image runs. Content-addressed by the image's layers, so
 * it is made once per image.
 */
export async function prepareSandboxLayer(opts: SandboxLayerOptions): Promise<SandboxLayer> {
  const want = opts.user ?? DEFAULT_USER
  const key = createHash('sha256')
    .update(JSON.stringify({ format: 1, layers: opts.layers, want }))
    .digest('hex')
  const layer = join('sandbox', `${LAYER_FORMAT}-${opts.uidBase}`, key)
  const view = new ImageView(opts.layers.map((l) => join(opts.into, l)))
  const runtime = inspectRuntime(view)
  const notes = [...runtime.notes, ...sudoNotes(view)]
  const plan = planAccount(view, want)
  const target = join(opts.into, layer)
  if (!existsSync(target)) await shared(target, () => build(opts, view, plan, target))
  return {
    layer,
    user: plan.account,
    libc: runtime.libc,
    envdRunnable: runtime.envdRunnable,
    notes,
  }
}

interface Plan {
  account: Account
  files?: AccountFiles
}

function planAccount(view: ImageView, want: { name: string; uid: number; home: string }): Plan {
  const text = (p: string) => view.readFile(p)?.toString('utf8')
  const current: AccountFiles = {
    passwd: text('/etc/passwd') ?? 'root:x:0:0:root:/root:/bin/sh\n',
    group: text('/etc/group') ?? 'root:x:0:\n',
  }
  const shadow = text('/etc/shadow')
  const gshadow = text('/etc/gshadow')
  if (shadow !== undefined) current.shadow = shadow
  if (gshadow !== undefined) current.gshadow = gshadow
  const { account, files } = addAccount(current, {
    ...want,
    shell: view.stat('/bin/bash')?.st.isFile() ? '/bin/bash' : '/bin/sh',
    groups: ['sudo', 'wheel'],
    today: Math.floor(Date.now() / 86_400_000),
  })
  return account.created ? { account, files } : { account }
}

async function build(
  opts: SandboxLayerOptions,
  view: ImageView,
  plan: Plan,
  target: string,
): Promise<void> {
  const tmp = await makeTempDir(opts.into)
  try {
    const root = join(tmp, 'layer')
    await mkdir(root, { mode: 0o755 })
    await lchown(root, opts.uidBase, opts.uidBase)
    const up = new UpperWriter(root, view, opts.uidBase)
    const { account, files } = plan
    if (files) {
      await up.file('/etc/passwd', files.passwd, 0o644)
      await up.file('/etc/group', files.group, 0o644)
      if (files.shadow !== undefined) await up.file('/etc/shadow', files.shadow, 0o640)
      if (files.gshadow !== undefined) await up.file('/etc/gshadow', files.gshadow, 0o640)
    }
    if (!view.stat(account.home)) {
      const owner = { uid: account.uid, gid: account.gid }
      await up.dir(account.home, 0o755, owner)
      for (const name of SKEL) {
        const content = view.readFile(`/etc/skel/${name}`)
        if (content) await up.file(`${account.home}/${name}`, content, 0o644, owner)
      }
    }
    await up.file(`/etc/sudoers.d/${account.name}`, sudoersEntry(account.name), 0o440)
    // Mount points of the host's read-only mounts, so a sandbox never has
    // to create them in its writable layer.
    if (!view.stat('/opt/warren/envd')) await up.dir('/opt/warren/envd', 0o755)
    for (const bin of ['/opt/warren/bin/node', '/opt/warren/bin/tini']) {
      if (!view.stat(bin)) await up.file(bin, '', 0o755)
    }
    await up.finish()
    await publishDir(root, target)
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

function sudoNotes(view: ImageView): string[] {
  if (!view.stat('/usr/bin/sudo')?.st.isFile()) {
    return ['sudo is not installed in the image: the sudoers entry waits for it']
  }
  const sudoers = view.readFile('/etc/sudoers')?.toString('utf8') ?? ''
  return /^\s*[@#]includedir\s+\/etc\/sudoers\.d\s*$/m.test(sudoers)
    ? []
    : ['/etc/sudoers does not include /etc/sudoers.d: the sudoers entry is not read']
}

/**
 * Writes into the new layer at paths resolved in the image (a file under a
 * symlinked /etc lands where the link points). Directories it must create
 * on the way take the image's owner, mode and time, as overlayfs copy-up
 * would: the upper directory's attributes are what the merged tree shows.
 */
class UpperWriter {
  private readonly times: [string, Date, Date][] = []

  constructor(
    private readonly root: string,
    private readonly view: ImageView,
    private readonly uidBase: number,
  ) {}

  async dir(path: string, mode: number, owner = { uid: 0, gid: 0 }): Promise<void> {
    const resolved = this.view.resolveParent(path) ?? path
    await this.parents(resolved)
    const abs = join(this.root, resolved)
    if (!lstatOrNull(abs)) await mkdir(abs)
    await lchown(abs, owner.uid + this.uidBase, owner.gid + this.uidBase)
    await chmod(abs, mode)
  }

  async file(
    path: string,
    content: string | Buffer,
    mode: number,
    owner?: { uid: number; gid: number },
  ): Promise<void> {
    const resolved = this.view.resolveParent(path) ?? path
    await this.parents(resolved)
    const abs = join(this.root, resolved)
    // An existing file keeps its owner and mode (shadow's group, say).
    const old = this.view.stat(resolved, false)?.st
    await writeFile(abs, content, { flag: 'wx' })
    const uid = owner ? owner.uid + this.uidBase : (old?.uid ?? this.uidBase)
    const gid = owner ? owner.gid + this.uidBase : (old?.gid ?? this.uidBase)
    await lchown(abs, uid, gid)
    await chmod(abs, old?.isFile() ? old.mode & 0o7777 : mode)
  }

  /** Directory times go on last: writing into a directory changes its time. */
  async finish(): Promise<void> {
    for (const [abs, atime, mtime] of this.times.reverse()) await utimes(abs, atime, mtime)
  }

  private async parents(resolved: string): Promise<void> {
    const parts = resolved.split('/').filter(Boolean)
    let image = ''
    for (const part of parts.slice(0, -1)) {
      image = `${image}/${part}`
      const abs = join(this.root, image)
      if (lstatOrNull(abs)) continue
      const below = this.view.stat(image, false)?.st
      await mkdir(abs)
      if (below?.isDirectory()) {
        await lchown(abs, below.uid, below.gid)
        await chmod(abs, below.mode & 0o7777)
        this.times.push([abs, below.atime, below.mtime])
      } else {
        await lchown(abs, this.uidBase, this.uidBase)
        await chmod(abs, 0o755)
      }
    }
  }
}
