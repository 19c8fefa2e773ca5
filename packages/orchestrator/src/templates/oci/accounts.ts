/**
 * Adding an account to an image's /etc/passwd, group, shadow and gshadow as
 * plain text, the way useradd would (E2B's builder adds `user` with
 * passwordless sudo), so no tool of the image has to run on the host.
 * Pure functions: file contents in, file contents out.
 */
export interface AccountFiles {
  passwd: string
  group: string
  shadow?: string
  gshadow?: string
}

export interface Account {
  name: string
  uid: number
  gid: number
  home: string
  shell: string
  /** False when the account was already in the image (its files unchanged). */
  created: boolean
}

export interface AccountRequest {
  name: string
  /** Wanted uid (and gid); the next free id from it is taken when in use. */
  uid: number
  home: string
  shell: string
  /** Supplementary groups to join, where the image has them (e.g. sudo, wheel). */
  groups: string[]
  /** Days since 1970 for shadow's last-change field. */
  today: number
}

const rows = (text: string) => text.split('\n').filter((l) => l.trim() && !l.startsWith('#'))
const field = (line: string, i: number) => line.split(':')[i] ?? ''
const withNewline = (text: string) => (text === '' || text.endsWith('\n') ? text : `${text}\n`)

function freeId(taken: Set<number>, from: number): number {
  let id = from
  while (taken.has(id)) id++
  return id
}

/** Adds the account unless an account of that name exists (then it is reported as found). */
export function addAccount(
  files: AccountFiles,
  req: AccountRequest,
): { account: Account; files: AccountFiles } {
  const existing = rows(files.passwd).find((l) => field(l, 0) === req.name)
  if (existing) {
    const account = {
      name: req.name,
      uid: Number(field(existing, 2)),
      gid: Number(field(existing, 3)),
      home: field(existing, 5) || '/',
      shell: field(existing, 6) || '/bin/sh',
      created: false,
    }
    return { account, files }
  }
  const uids = new Set(rows(files.passwd).map((l) => Number(field(l, 2))))
  const groups = rows(files.group)
  const gids = new Set(groups.map((l) => Number(field(l, 2))))
  const uid = freeId(uids, req.uid)
  const own = groups.find((l) => field(l, 0) === req.name)
  const gid = own ? Number(field(own, 2)) : gids.has(uid) ? freeId(gids, req.uid) : uid
  const account = { name: req.name, uid, gid, home: req.home, shell: req.shell, created: true }

  const passwd = `${withNewline(files.passwd)}${req.name}:x:${uid}:${gid}::${req.home}:${req.shell}\n`
  let group = addMembers(files.group, req.name, req.groups, 3)
  if (!own) group = `${withNewline(group)}${req.name}:x:${gid}:\n`
  const out: AccountFiles = { passwd, group }
  if (files.shadow !== undefined) {
    // `!`: no password (sudo is NOPASSWD), the account itself is valid.
    out.shadow = `${withNewline(files.shadow)}${req.name}:!:${req.today}:0:99999:7:::\n`
  }
  if (files.gshadow !== undefined) {
    let gshadow = addMembers(files.gshadow, req.name, req.groups, 3)
    if (!own) gshadow = `${withNewline(gshadow)}${req.name}:!::\n`
    out.gshadow = gshadow
  }
  return { account, files: out }
}

/** Adds `name` to the member list (field `at`) of each of `groups` that exists. */
function addMembers(text: string, name: string, groups: string[], at: number): string {
  return text
    .split('\n')
    .map((line) => {
      const parts = line.split(':')
      if (parts.length <= at || !groups.includes(parts[0] ?? '')) return line
      const members = (parts[at] ?? '').split(',').filter(Boolean)
      if (!members.includes(name)) members.push(name)
      parts[at] = members.join(',')
      return parts.join(':')
    })
    .join('\n')
}

/** The sudoers.d entry E2B's `user` gets. */
export function sudoersEntry(name: string): string {
  return `${name} ALL=(ALL:ALL) NOPASSWD: ALL\n`
}
