import { type FSWatcher, lstatSync, readdirSync, watch } from 'node:fs'
import { posix } from 'node:path'
import { EventType } from '@warren/shared/gen/filesystem/filesystem_pb'

export interface WatchEvent {
  /** Path relative to the watched directory. */
  name: string
  type: EventType
  /** Absolute path, for entry lookups. */
  path: string
}

interface Known {
  ino: bigint
  mode: number
  uid: number
  gid: number
  mtimeNs: bigint
  dir: boolean
}

function snapshot(path: string): Known | undefined {
  try {
    const s = lstatSync(path, { bigint: true })
    return {
      ino: s.ino,
      mode: Number(s.mode),
      uid: Number(s.uid),
      gid: Number(s.gid),
      mtimeNs: s.mtimeNs,
      dir: s.isDirectory(),
    }
  } catch {
    return undefined
  }
}

/**
 * inotify through fs.watch, one watch per directory (recursive adds watches
 * for new subdirectories). fs.watch only says "rename" or "change", so the
 * fsnotify-style event type is recovered from a snapshot of each directory:
 * rename + appeared → CREATE; rename + gone → REMOVE, or RENAME when the same
 * inode shows up under another name in the same batch (then CREATE for the
 * new name, as fsnotify reports a move); change + mode/owner differs → CHMOD,
 * else WRITE. A move out of the watched tree is reported as REMOVE.
 * envd watches as root, as E2B's does.
 */
export class DirWatcher {
  private readonly watchers = new Map<string, FSWatcher>()
  private readonly known = new Map<string, Map<string, Known>>()
  private batch: (WatchEvent | { gone: string; ino: bigint; rel: string })[] = []
  private flushScheduled = false
  private closed = false

  constructor(
    private readonly root: string,
    private readonly recursive: boolean,
    private readonly emit: (e: WatchEvent) => void,
    private readonly fail: (err: unknown) => void,
  ) {}

  /** Throws (ENOENT, EACCES, ENOSPC for the inotify limit) when the root cannot be watched. */
  start(): void {
    this.addDir(this.root, true)
  }

  close(): void {
    this.closed = true
    for (const w of this.watchers.values()) w.close()
    this.watchers.clear()
    this.known.clear()
  }

  private addDir(dir: string, top: boolean): void {
    if (this.watchers.has(dir)) return
    let w: FSWatcher
    try {
      w = watch(dir, { persistent: false }, (type, filename) => {
        if (filename) this.onEvent(dir, type, filename.toString())
      })
    } catch (err) {
      if (top) throw err
      return
    }
    w.on('error', (err) => (dir === this.root ? this.fail(err) : this.dropDir(dir)))
    this.watchers.set(dir, w)
    const entries = new Map<string, Known>()
    this.known.set(dir, entries)
    let names: string[] = []
    try {
      names = readdirSync(dir)
    } catch {
      // watched but unreadable: events still arrive
    }
    for (const name of names) {
      const k = snapshot(posix.join(dir, name))
      if (!k) continue
      entries.set(name, k)
      if (k.dir && this.recursive) this.addDir(posix.join(dir, name), false)
    }
  }

  private dropDir(dir: string): void {
    for (const [path, w] of this.watchers) {
      if (path === dir || path.startsWith(`${dir}/`)) {
        w.close()
        this.watchers.delete(path)
        this.known.delete(path)
      }
    }
  }

  private onEvent(dir: string, type: string, name: string): void {
    if (this.closed) return
    const entries = this.known.get(dir)
    if (!entries) return
    const path = posix.join(dir, name)
    const rel = posix.relative(this.root, path)
    const now = snapshot(path)
    const before = entries.get(name)
    if (now) entries.set(name, now)
    else entries.delete(name)
    if (type === 'rename') {
      if (now && (!before || before.ino !== now.ino)) {
        this.batch.push({ name: rel, type: EventType.CREATE, path })
        if (now.dir && this.recursive) this.addDir(path, false)
      } else if (!now && before) {
        this.batch.push({ gone: path, ino: before.ino, rel })
        if (before.dir) this.dropDir(path)
      }
    } else if (now) {
      const chmod =
        before && (before.mode !== now.mode || before.uid !== now.uid || before.gid !== now.gid)
      this.batch.push({ name: rel, type: chmod ? EventType.CHMOD : EventType.WRITE, path })
    }
    this.scheduleFlush()
  }

  /** Events from one inotify read arrive together; pair moves within the batch. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      const batch = this.batch
      this.batch = []
      const created = new Set<bigint>()
      for (const e of batch) {
        if ('type' in e && e.type === EventType.CREATE) {
          const k = this.known.get(posix.dirname(e.path))?.get(posix.basename(e.path))
          if (k) created.add(k.ino)
        }
      }
      for (const e of batch) {
        if (this.closed) return
        if ('gone' in e) {
          const type = created.has(e.ino) ? EventType.RENAME : EventType.REMOVE
          this.emit({ name: e.rel, type, path: e.gone })
        } else this.emit(e)
      }
    })
  }
}
