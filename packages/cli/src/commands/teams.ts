import type { Command } from 'commander'
import { adminCall } from '../lib/admin-api.js'
import { type ConnectionFlags, withConnectionFlags } from '../lib/connection.js'
import { print, printOne } from '../lib/output.js'

interface TeamSummary {
  id: string
  name: string
  maxConcurrent: number
  maxLifetimeS: number
  maxMemoryMb: number | null
  maxTemplates: number | null
  requiredIsolation: string | null
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

// `none` stays a word until the body is made: commander stores a parser's
// null as an empty string.
type None = 'none'

/** An integer, or `none` for no limit. */
const limit = (v: string): number | None => (v === 'none' ? v : int(v))

const orNull = <T>(v: T | None): T | null => (v === 'none' ? null : v)

type LimitFlags = Flags & {
  maxConcurrent?: number
  maxLifetime?: number
  maxMemory?: number | None
  maxTemplates?: number | None
  requireIsolation?: string
}

/** The limits named on the command line, as the admin API takes them. */
function limitsBody(opts: LimitFlags): Record<string, number | string | null> {
  return {
    ...(opts.maxConcurrent !== undefined ? { maxConcurrent: opts.maxConcurrent } : {}),
    ...(opts.maxLifetime !== undefined ? { maxLifetimeS: opts.maxLifetime } : {}),
    ...(opts.maxMemory !== undefined ? { maxMemoryMb: orNull(opts.maxMemory) } : {}),
    ...(opts.maxTemplates !== undefined ? { maxTemplates: orNull(opts.maxTemplates) } : {}),
    ...(opts.requireIsolation !== undefined
      ? { requiredIsolation: orNull(opts.requireIsolation) }
      : {}),
  }
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
          memoryMb: `${t.activeMemoryMb}/${t.maxMemoryMb ?? '-'}`,
          maxTemplates: t.maxTemplates ?? '-',
          isolation: t.requiredIsolation ?? '-',
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
    .option(
      '--max-memory <mb>',
      'memory its active sandboxes may hold together (default none)',
      limit,
    )
    .option('--max-templates <n>', 'templates it may have (default none)', limit)
    .option(
      '--require-isolation <runc|gvisor>',
      'the isolation its new sandboxes must have (default none: any)',
    )
    .description('create a team; make its keys with `warren keys create --team <name>`')
    .action(async (name: string, opts: LimitFlags) => {
      const team = await adminCall<Record<string, unknown>>(opts, 'POST', '/admin/teams', {
        name,
        ...limitsBody(opts),
      })
      printOne(team, opts.json)
    })

  withConnectionFlags(teams.command('set-limits').argument('<team>', 'team name or id'))
    .option('--max-concurrent <n>', 'concurrent sandboxes', int)
    .option('--max-lifetime <seconds>', 'longest life of a sandbox', int)
    .option('--max-memory <mb>', 'memory its active sandboxes may hold together, or none', limit)
    .option('--max-templates <n>', 'templates it may have, or none', limit)
    .option(
      '--require-isolation <runc|gvisor>',
      'the isolation its new sandboxes must have, or none (the API checks the name)',
    )
    .description('change a team’s limits; they apply from its next create or resume')
    .action(async (team: string, opts: LimitFlags) => {
      const updated = await adminCall<Record<string, unknown>>(
        opts,
        'PATCH',
        `/admin/teams/${encodeURIComponent(team)}`,
        limitsBody(opts),
      )
      printOne(updated, opts.json)
    })
}
