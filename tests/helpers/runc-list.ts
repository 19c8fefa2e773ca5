import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

/**
 * The containers a runc root holds. `runc list` fails when a container's
 * state directory goes while it reads them — a background teardown's
 * `runc delete` — so a failed list is read again (a few times).
 */
export function runcContainers(root: string): Array<{ id: string; status: string }> {
  if (!existsSync(root)) return []
  for (let attempt = 1; ; attempt++) {
    try {
      const out = execFileSync('runc', ['--root', root, 'list', '--format', 'json'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }).trim()
      return (JSON.parse(out || 'null') ?? []) as Array<{ id: string; status: string }>
    } catch (err) {
      if (attempt >= 5) throw err
    }
  }
}
