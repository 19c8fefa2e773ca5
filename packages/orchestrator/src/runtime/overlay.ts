import { readFileSync } from 'node:fs'
import { CommandError, run } from '../exec.js'

/** Mounts the template's root read-only below the sandbox's writable layer. */
export async function mountOverlay(opts: {
  lower: string
  upper: string
  work: string
  target: string
}): Promise<void> {
  await run('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${opts.lower},upperdir=${opts.upper},workdir=${opts.work}`,
    opts.target,
  ])
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

/** Mount points at or below `dir`, deepest first (the order to unmount them in). */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) =>
      p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))),
    )
    .filter((p) => p === dir || p.startsWith(prefix))
    .sort((a, b) => b.length - a.length)
}
