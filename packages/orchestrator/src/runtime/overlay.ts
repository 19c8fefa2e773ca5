import { readFileSync } from 'node:fs'
import { CommandError, run } from '../exec.js'

/**
 * Mounts the template's layers read-only below the sandbox's writable layer.
 * Paths are relative to `cwd`: the kernel keeps the option strings as given,
 * and they are what the sandbox sees in its mountinfo.
 */
export async function mountOverlay(opts: {
  cwd: string
  lowers: string[]
  upper: string
  work: string
  target: string
}): Promise<void> {
  await run(
    'mount',
    [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${opts.lowers.join(':')},upperdir=${opts.upper},workdir=${opts.work}`,
      opts.target,
    ],
    { cwd: opts.cwd },
  )
}

export async function unmount(target: string): Promise<void> {
  try {
    await run('umount', [target])
  } catch (err) {
    if (err instanceof CommandError && /not mounted|no mount point/.test(err.stderr)) return
    // A busy mount (a process still in it) is detached now and freed when released.
    await run('umount', ['--lazy', target], { okCodes: [32] })
  }
}

/** Unmounts everything at or below `dir`: overlays first (they stand on the rest), then deepest first. */
export async function unmountAll(dir: string): Promise<void> {
  const mounts = mountsUnder(dir, true)
  for (const m of mounts) await unmount(m)
}

/** Mount points at or below `dir`, deepest first (the order to unmount them in). */
export function mountsUnder(dir: string, overlaysFirst = false): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => {
      const fields = line.split(' ')
      const sep = fields.indexOf('-')
      return { path: fields[4], overlay: fields[sep + 1] === 'overlay' }
    })
    .filter((m): m is { path: string; overlay: boolean } => !!m.path)
    .map((m) => ({
      ...m,
      path: m.path.replace(/\\(\d{3})/g, (_, o: string) =>
        String.fromCharCode(Number.parseInt(o, 8)),
      ),
    }))
    .filter((m) => m.path === dir || m.path.startsWith(prefix))
    .sort(
      (a, b) =>
        (overlaysFirst ? Number(b.overlay) - Number(a.overlay) : 0) ||
        b.path.length - a.path.length,
    )
    .map((m) => m.path)
}
