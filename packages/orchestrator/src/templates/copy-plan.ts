import { posix } from 'node:path'
import { minimatch } from 'minimatch'

/** An entry of an uploaded files archive, as listed on the host. */
export interface ArchiveEntry {
  path: string
  dir: boolean
}

export interface CopyStep {
  /** The source as the client named it (a path or glob relative to its context). */
  src: string
  /** Absolute, or relative to the working directory; a trailing '/' means a directory. */
  dest: string
  /** Owner, `user` or `user:group`, resolved inside the sandbox. */
  owner: string
  /** Octal mode applied to what was copied, e.g. `0755`; empty keeps the archive's modes. */
  mode: string
  workdir: string
}

/** Single-quoted for sh. */
export function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`
}

function normalize(p: string): string {
  return p.replace(/^(\.\/)+/, '').replace(/\/+$/, '')
}

/**
 * The shell script that applies a COPY inside the build sandbox, with
 * Docker's rules: a matched directory's contents go into the destination;
 * a file goes into it when it names a directory (trailing '/', several
 * sources, or an existing directory), else becomes it. Everything copied
 * gets the owner (and the mode, if given). The archive is extracted by the
 * sandbox's own `tar` as root, so nothing of it is ever unpacked on the host.
 */
export function copyScript(
  step: CopyStep,
  entries: ArchiveEntry[],
  archive: { staging: string; gzip: boolean },
): string {
  const { staging } = archive
  const src = normalize(step.src) || '.'
  const all = entries.map((e) => ({ path: normalize(e.path), dir: e.dir })).filter((e) => e.path)
  const isMatch = (p: string) => src === '.' || minimatch(p, src, { dot: true })
  // Top-level matches only: what lies inside a matched directory comes along with it.
  const matches =
    src === '.'
      ? [{ path: '.', dir: true }]
      : all.filter(
          (e) =>
            isMatch(e.path) &&
            !all.some((a) => a.dir && isMatch(a.path) && e.path.startsWith(`${a.path}/`)),
        )
  if (!matches.length) throw new Error(`no files match '${step.src}' in the uploaded archive`)
  const dest = posix.resolve(step.workdir || '/', step.dest)
  const destIsDir = step.dest.endsWith('/') || matches.length > 1
  const S = shq(staging)
  const lines = [
    'set -e',
    `mkdir -p ${S}`,
    `tar -x${archive.gzip ? 'z' : ''}f ${shq(`${staging}.tar`)} -C ${S}`,
    `O=${shq(step.owner)}`,
    'case "$O" in *:*) ;; *) O="$O:$(id -gn "$O")" ;; esac',
    // What was copied, collected in "$@" for chown and chmod.
    'set --',
  ]
  const add = (target: string) => lines.push(`set -- "$@" ${shq(target)}`)
  const children = (dir: string) =>
    dir === '.'
      ? all.filter((e) => !e.path.includes('/'))
      : all.filter((e) => posix.dirname(e.path) === dir)
  for (const m of matches) {
    if (m.dir) {
      lines.push(`mkdir -p ${shq(dest)}`, `chown "$O" ${shq(dest)}`)
      for (const c of children(m.path)) {
        const target = posix.join(dest, posix.basename(c.path))
        lines.push(`cp -a ${shq(`${staging}/${c.path}`)} ${shq(target)}`)
        add(target)
      }
    } else if (destIsDir) {
      const target = posix.join(dest, posix.basename(m.path))
      lines.push(`mkdir -p ${shq(dest)}`, `cp -a ${shq(`${staging}/${m.path}`)} ${shq(target)}`)
      add(target)
    } else {
      // `COPY file /existing-dir` puts the file inside, as Docker does.
      lines.push(
        `D=${shq(dest)}`,
        `if [ -d "$D" ]; then D="$D"/${shq(posix.basename(m.path))}; else mkdir -p "$(dirname "$D")"; fi`,
        `cp -a ${shq(`${staging}/${m.path}`)} "$D"`,
        'set -- "$@" "$D"',
      )
    }
  }
  lines.push('[ $# -eq 0 ] || chown -R "$O" -- "$@"')
  if (step.mode) lines.push(`[ $# -eq 0 ] || chmod -R ${shq(step.mode)} -- "$@"`)
  lines.push(`rm -rf ${S} ${shq(`${staging}.tar`)}`)
  return `${lines.join('\n')}\n`
}
