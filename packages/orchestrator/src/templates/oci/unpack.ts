import { constants } from 'node:fs'
import { chmod, lchown, link, lutimes, mkdir, open, rm, symlink, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { WarrenError } from '@warren/shared'
import tar, { type Header } from 'tar-stream'
import { UID_RANGE } from '../../runtime/spec.js'
import type { DiskBudget } from './disk-limits.js'
import { confined, lstatOrNull, makeWhiteouts, setXattrs, type XattrRecord } from './layer-fs.js'

export interface UnpackOptions {
  /** The host uid (and gid) that sandbox root maps to. */
  uidBase: number
  /** Counts what the layer writes; throws to stop it (too big, disk full). */
  budget?: DiskBudget
}

export interface UnpackStats {
  entries: number
  whiteouts: number
  opaqueDirs: number
  /** Entries not written (device nodes, fifos), with why. */
  skipped: string[]
  /** Extended attributes that could not be kept. */
  xattrWarnings: string[]
}

const WHITEOUT = '.wh.'
const OPAQUE = '.wh..wh..opq'
/** Image xattrs worth keeping; trusted.* would let an image forge overlayfs metadata. */
const KEPT_XATTR = /^(user\.|security\.capability$)/
const MAX_LISTED = 20

/**
 * Applies one image layer (a tar stream) to an empty directory in the form
 * overlayfs reads as a lower layer: OCI whiteouts become 0/0 character
 * devices, opaque markers the directory's `trusted.overlay.opaque=y`.
 *
 * Threat model: the tar is hostile. Absolute and `..` names are refused;
 * nothing is ever written through a symlink (ancestors must be real
 * directories of this layer, files are created O_EXCL|O_NOFOLLOW); hard
 * links point inside the layer; devices are not created. Owners are shifted
 * by `uidBase` so sandbox root owns what image root owned.
 */
export async function unpackLayer(
  source: Readable,
  root: string,
  opts: UnpackOptions,
): Promise<UnpackStats> {
  const w = new LayerWriter(root, opts.uidBase, opts.budget)
  const extract = tar.extract()
  const feeding = pipeline(source, extract)
  // Awaited below; handled now too, so that an entry refused mid-stream
  // (the pipeline then fails while the loop unwinds) is never an unhandled
  // rejection, which would take the whole node down.
  feeding.catch(() => {})
  try {
    for await (const entry of extract) {
      await w.apply(entry.header, entry)
      entry.resume()
    }
    await feeding
  } catch (err) {
    extract.destroy()
    source.destroy()
    await feeding.catch(() => {})
    throw err
  }
  return w.finish()
}

/** A tar name → a clean path relative to the layer root ('' for the root). */
export function entryPath(name: string): string {
  if (name.includes('\0')) throw refuse(name, 'contains a NUL byte')
  if (name.startsWith('/')) throw refuse(name, 'is absolute')
  const parts = name.split('/').filter((p) => p !== '' && p !== '.')
  if (parts.includes('..')) throw refuse(name, "climbs out with '..'")
  return parts.join('/')
}

function refuse(name: string, why: string): WarrenError {
  return new WarrenError('invalid_argument', `refusing layer entry '${name}': it ${why}`)
}

class LayerWriter {
  /** Paths verified (or made) as real directories of this layer. */
  private readonly dirs = new Set<string>([''])
  private readonly dirTimes = new Map<string, Date>()
  private readonly whiteouts = new Set<string>()
  private readonly opaque = new Set<string>()
  private readonly xattrs: XattrRecord[] = []
  private readonly stats: UnpackStats = {
    entries: 0,
    whiteouts: 0,
    opaqueDirs: 0,
    skipped: [],
    xattrWarnings: [],
  }

  constructor(
    private readonly root: string,
    private readonly uidBase: number,
    private readonly budget: DiskBudget | undefined,
  ) {}

  /** Image ids → host ids; ids past the sandbox's range become its nobody. */
  private shift(id: number | undefined): number {
    const n = id ?? 0
    return this.uidBase + (n >= 0 && n < UID_RANGE ? n : UID_RANGE - 2)
  }

  async apply(h: Header, body: AsyncIterable<unknown>): Promise<void> {
    this.stats.entries++
    this.budget?.entry()
    const rel = entryPath(h.name)
    const base = rel.slice(rel.lastIndexOf('/') + 1)
    const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : ''
    if (base === OPAQUE) {
      await this.ensureDir(parent)
      this.opaque.add(parent)
      return
    }
    if (base.startsWith(WHITEOUT)) {
      const name = base.slice(WHITEOUT.length)
      if (!name || name === '..') throw refuse(h.name, 'whites out nothing valid')
      const target = parent ? `${parent}/${name}` : name
      await this.ensureDir(parent)
      this.whiteouts.add(target)
      return
    }
    if (rel === '' && h.type !== 'directory') throw refuse(h.name, 'replaces the root')
    const abs = join(this.root, rel)
    const uid = this.shift(h.uid)
    const gid = this.shift(h.gid)
    const mode = (h.mode ?? 0o644) & 0o7777
    const mtime = h.mtime ?? new Date(0)
    switch (h.type) {
      case 'directory': {
        if (rel === '') break
        await this.ensureDir(parent)
        await this.clear(rel, true)
        if (!this.dirs.has(rel)) await mkdir(abs, { mode: 0o700 })
        this.dirs.add(rel)
        break
      }
      case 'file':
      case 'contiguous-file': {
        await this.ensureDir(parent)
        await this.clear(rel, false)
        const fh = await open(
          abs,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o600,
        )
        try {
          for await (const chunk of body) {
            const buf = chunk as Buffer
            this.budget?.charge(buf.length)
            for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off)).bytesWritten
          }
          // chown clears setuid/setgid, so the mode goes on after it.
          await fh.chown(uid, gid)
          await fh.chmod(mode)
          await fh.utimes(mtime, mtime)
        } finally {
          await fh.close()
        }
        break
      }
      case 'symlink': {
        if (!h.linkname || h.linkname.includes('\0')) throw refuse(h.name, 'has a bad link target')
        await this.ensureDir(parent)
        await this.clear(rel, false)
        await symlink(h.linkname, abs)
        await lchown(abs, uid, gid)
        await lutimes(abs, mtime, mtime)
        break
      }
      case 'link': {
        const target = entryPath(h.linkname ?? '')
        const st = target ? lstatOrNull(join(this.root, target)) : undefined
        if (!target || !confined(this.root, target) || !st || st.isDirectory()) {
          throw refuse(
            h.name,
            `is a hard link to '${h.linkname}', which is not a file of this layer`,
          )
        }
        await this.ensureDir(parent)
        if (target === rel) break
        await this.clear(rel, false)
        await link(join(this.root, target), abs)
        break
      }
      case 'character-device':
      case 'block-device':
      case 'fifo':
        this.skip(`${rel} (${h.type})`)
        return
      default:
        throw refuse(h.name, `has an unsupported type '${h.type}'`)
    }
    if (h.type === 'directory') {
      // Directory times are set last: writing into a directory changes them.
      await lchown(abs, uid, gid)
      await chmod(abs, mode)
      this.dirTimes.set(rel, mtime)
    }
    if (h.type !== 'symlink') this.collectXattrs(rel, h)
  }

  /** Makes `rel` and its ancestors real directories of this layer, or refuses. */
  private async ensureDir(rel: string): Promise<void> {
    if (this.dirs.has(rel)) return
    const parts = rel.split('/')
    let cur = ''
    for (const part of parts) {
      cur = cur ? `${cur}/${part}` : part
      if (this.dirs.has(cur)) continue
      const abs = join(this.root, cur)
      const st = lstatOrNull(abs)
      if (!st) {
        await mkdir(abs, { mode: 0o755 })
        await lchown(abs, this.uidBase, this.uidBase)
      } else if (!st.isDirectory()) {
        throw new WarrenError(
          'invalid_argument',
          `refusing layer entries below '${cur}': it is not a directory in this layer`,
        )
      }
      this.dirs.add(cur)
    }
  }

  /** Removes what is at `rel` unless it is a directory and `keepDir`; forgets what was below. */
  private async clear(rel: string, keepDir: boolean): Promise<void> {
    const st = lstatOrNull(join(this.root, rel))
    if (!st || (keepDir && st.isDirectory())) return
    await rm(join(this.root, rel), { recursive: true, force: true })
    const below = `${rel}/`
    for (const d of this.dirs) if (d === rel || d.startsWith(below)) this.dirs.delete(d)
  }

  private collectXattrs(rel: string, h: Header): void {
    const pax = typeof h.pax === 'object' && h.pax ? (h.pax as Record<string, unknown>) : {}
    for (const [key, value] of Object.entries(pax)) {
      if (!key.startsWith('SCHILY.xattr.') || typeof value !== 'string') continue
      const name = key.slice('SCHILY.xattr.'.length)
      if (!KEPT_XATTR.test(name)) {
        this.warn(`${rel}: ${name} not kept`)
      } else if (value.includes('\uFFFD')) {
        // tar-stream reads PAX values as UTF-8: bytes that are not survive as U+FFFD.
        this.warn(`${rel}: ${name} not kept (binary value not representable)`)
      } else {
        this.xattrs.push({ path: rel, name, value: Buffer.from(value, 'utf8') })
      }
    }
  }

  private skip(what: string): void {
    if (this.stats.skipped.length < MAX_LISTED) this.stats.skipped.push(what)
  }

  private warn(what: string): void {
    if (this.stats.xattrWarnings.length < MAX_LISTED) this.stats.xattrWarnings.push(what)
  }

  /**
   * Whiteouts, opaque markers, xattrs and directory times, after every entry
   * is in place (each is checked again: a later entry may have replaced a
   * directory by a symlink). A whiteout of a path this same layer recreated
   * as a directory makes that directory opaque: deleted below, new here.
   */
  async finish(): Promise<UnpackStats> {
    const ok = (rel: string) => confined(this.root, rel)
    const mknods: string[] = []
    for (const rel of this.whiteouts) {
      if (!ok(rel)) continue
      const st = lstatOrNull(join(this.root, rel))
      if (!st) mknods.push(rel)
      else if (st.isDirectory()) this.opaque.add(rel)
    }
    await makeWhiteouts(this.root, mknods)
    this.stats.whiteouts = mknods.length
    const opaque = [...this.opaque].filter(
      (rel) => ok(rel) && lstatOrNull(join(this.root, rel))?.isDirectory(),
    )
    const failed = await setXattrs(
      this.root,
      opaque.map((path) => ({ path, name: 'trusted.overlay.opaque', value: Buffer.from('y') })),
    )
    if (failed.length) {
      throw new WarrenError('internal', `cannot mark opaque directories: ${failed.join('; ')}`)
    }
    this.stats.opaqueDirs = opaque.length
    const kept = this.xattrs.filter((x) => ok(x.path) && lstatOrNull(join(this.root, x.path)))
    for (const line of await setXattrs(this.root, kept)) this.warn(line)
    const byDepth = [...this.dirTimes].sort(
      (a, b) => b[0].split('/').length - a[0].split('/').length,
    )
    for (const [rel, time] of byDepth) {
      if (ok(rel) && lstatOrNull(join(this.root, rel))?.isDirectory()) {
        await utimes(join(this.root, rel), time, time)
      }
    }
    return this.stats
  }
}
