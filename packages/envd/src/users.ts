import { readFileSync, statSync } from 'node:fs'

export interface User {
  name: string
  uid: number
  gid: number
  home: string
  shell: string
  /** Primary group first, then the supplementary groups listing the user. */
  groups: number[]
}

interface Group {
  name: string
  gid: number
  members: string[]
}

export function parsePasswd(text: string): Omit<User, 'groups'>[] {
  const users: Omit<User, 'groups'>[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const f = line.split(':')
    if (f.length < 7) continue
    const uid = Number(f[2])
    const gid = Number(f[3])
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue
    users.push({ name: f[0]!, uid, gid, home: f[5] || '/', shell: f[6] || '/bin/sh' })
  }
  return users
}

export function parseGroup(text: string): Group[] {
  const groups: Group[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const f = line.split(':')
    if (f.length < 4) continue
    const gid = Number(f[2])
    if (!Number.isInteger(gid)) continue
    groups.push({ name: f[0]!, gid, members: f[3] ? f[3].split(',').filter(Boolean) : [] })
  }
  return groups
}

interface Db {
  byName: Map<string, User>
  byUid: Map<number, User>
  groupNames: Map<number, string>
}

function build(passwd: string, group: string): Db {
  const groups = parseGroup(group)
  const db: Db = { byName: new Map(), byUid: new Map(), groupNames: new Map() }
  for (const g of groups) if (!db.groupNames.has(g.gid)) db.groupNames.set(g.gid, g.name)
  for (const u of parsePasswd(passwd)) {
    const extra = groups.filter((g) => g.members.includes(u.name) && g.gid !== u.gid)
    const user: User = { ...u, groups: [u.gid, ...extra.map((g) => g.gid)] }
    if (!db.byName.has(user.name)) db.byName.set(user.name, user)
    if (!db.byUid.has(user.uid)) db.byUid.set(user.uid, user)
  }
  return db
}

/**
 * Users are read from /etc/passwd and /etc/group at request time (a template
 * or a command may add users while envd runs); the parse is reused while both
 * files keep the same inode, size and mtime, so a lookup costs two stats.
 */
let cached: { key: string; db: Db } | undefined

function fileKey(path: string): string {
  try {
    const s = statSync(path, { bigint: true })
    return `${s.ino}:${s.size}:${s.mtimeNs}`
  } catch {
    return 'missing'
  }
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

function db(): Db {
  const key = `${fileKey('/etc/passwd')}|${fileKey('/etc/group')}`
  if (cached?.key !== key) {
    cached = { key, db: build(readOr('/etc/passwd'), readOr('/etc/group')) }
  }
  return cached.db
}

export function lookupUser(name: string): User | undefined {
  return db().byName.get(name)
}

/** Names of uids and gids from one read of the databases (for a listing's many entries). */
export interface OwnerNames {
  user(uid: number): string
  group(gid: number): string
}

export function ownerNames(): OwnerNames {
  const d = db()
  return {
    user: (uid) => d.byUid.get(uid)?.name ?? String(uid),
    group: (gid) => d.groupNames.get(gid) ?? String(gid),
  }
}
