import type { Command } from 'commander'
import { adminCall } from '../lib/admin-api.js'
import { type ConnectionFlags, withConnectionFlags } from '../lib/connection.js'
import { print, printOne } from '../lib/output.js'

interface TeamSummary {
  id: string
  name: string
  maxConcurrent: number
  maxLifetimeS: number
  activeSandboxes: number
  activeMemoryMb: number
  activeKeys: number
}

type Flags = ConnectionFlags & { json?: boolean }

const int = (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n)) throw new Error(`not an integer: ${v}`)
  return n
}

/** Teams and their limits, over the admin API of a running Warren (an admin key). */
export function registerTeams(program: Command): void {
  const teams = program
    .command('teams')
    .description('manage teams and their limits (admin API; needs an admin key)')

  withConnectionFlags(teams.command('list').alias('ls'))
    .description('teams with their limits and what they use now')
    .action(async (opts: Flags) => {
      const rows = await adminCall<TeamSummary[]>(opts, 'GET', '/admin/teams')
      print(
        rows.map((t) => ({
          name: t.name,
          id: t.id,
          sandboxes: `${t.activeSandboxes}/${t.maxConcurrent}`,
          memoryMb: t.activeMemoryMb,
          maxLifetimeS: t.maxLifetimeS,
          keys: t.activeKeys,
        })),
        opts.json,
      )
    })

  withConnectionFlags(teams.command('create').argument('<name>', 'the new team'))
    .option(
      '--max-concurrent <n>',
      'concurrent sandboxes (default WARREN_MAX_CONCURRENT_SANDBOXES)',
      int,
    )
    .option(
      '--max-lifetime <seconds>',
      'longest life of a sandbox (default WARREN_MAX_LIFETIME)',
      int,
    )
    .description('create a team; make its keys with `warren keys create --team <name>`')
    .action(
      async (name: string, opts: Flags & { maxConcurrent?: number; maxLifetime?: number }) => {
        const team = await adminCall<Record<string, unknown>>(opts, 'POST', '/admin/teams', {
          name,
          ...(opts.maxConcurrent !== undefined ? { maxConcurrent: opts.maxConcurrent } : {}),
          ...(opts.maxLifetime !== undefined ? { maxLifetimeS: opts.maxLifetime } : {}),
        })
        printOne(team, opts.json)
      },
    )

  withConnectionFlags(teams.command('set-limits').argument('<team>', 'team name or id'))
    .option('--max-concurrent <n>', 'concurrent sandboxes', int)
    .option('--max-lifetime <seconds>', 'longest life of a sandbox', int)
    .description('change a team’s limits; they apply from its next create or resume')
    .action(
      async (team: string, opts: Flags & { maxConcurrent?: number; maxLifetime?: number }) => {
        const updated = await adminCall<Record<string, unknown>>(
          opts,
          'PATCH',
          `/admin/teams/${encodeURIComponent(team)}`,
          {
            ...(opts.maxConcurrent !== undefined ? { maxConcurrent: opts.maxConcurrent } : {}),
            ...(opts.maxLifetime !== undefined ? { maxLifetimeS: opts.maxLifetime } : {}),
          },
        )
        printOne(updated, opts.json)
      },
    )
}
