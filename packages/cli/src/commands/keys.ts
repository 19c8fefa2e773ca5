import { createApiKey, ensureDefaultTeam, listApiKeys, revokeApiKey } from '@warren/api'
import type { Command } from 'commander'
import { adminCall } from '../lib/admin-api.js'
import { type ConnectionFlags, withConnectionFlags } from '../lib/connection.js'
import { print, printOne } from '../lib/output.js'
import { withDb } from '../lib/store.js'

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage API keys (in the local store)')

  withConnectionFlags(keys.command('create'))
    .option('-n, --name <name>', 'a name to recognise the key by', 'cli')
    .option(
      '--team <team>',
      "a team's key (name or id), made through the running API's admin API with an admin key",
    )
    .option('--admin', 'an admin key (with --team)')
    .description(
      'create an API key (default team: in the local store; --team: over the admin API); shown once',
    )
    .action(
      async (
        opts: ConnectionFlags & { name: string; json?: boolean; team?: string; admin?: boolean },
      ) => {
        if (opts.team) {
          const made = await adminCall<{ key: string; id: string }>(
            opts,
            'POST',
            `/admin/teams/${encodeURIComponent(opts.team)}/keys`,
            { name: opts.name, ...(opts.admin ? { admin: true } : {}) },
          )
          if (opts.json) printOne(made, true)
          else process.stdout.write(`${made.key}\n(id ${made.id}; shown once, stored hashed)\n`)
          return
        }
        if (opts.admin) throw new Error('--admin goes with --team (the admin API makes admin keys)')
        await withDb(async (db, cfg) => {
          const team = await ensureDefaultTeam(db, cfg)
          const { key, info } = await createApiKey(db, team.id, opts.name)
          if (opts.json) printOne({ ...info, key }, true)
          else process.stdout.write(`${key}\n(id ${info.id}; shown once, stored hashed)\n`)
        })
      },
    )

  keys
    .command('list')
    .alias('ls')
    .option('--json', 'machine-readable output')
    .description('list API keys (masked)')
    .action(async (opts: { json?: boolean }) => {
      const rows = await withDb((db) => listApiKeys(db))
      print(
        rows.map((k) => ({
          id: k.id,
          name: k.name,
          key: k.mask,
          admin: k.admin ? 'yes' : '',
          created: new Date(k.createdAt),
          revoked: k.revokedAt ? new Date(k.revokedAt) : '',
        })),
        opts.json,
      )
    })

  keys
    .command('revoke')
    .argument('<id>', 'key id (from `warren keys list`)')
    .description('revoke an API key')
    .action(async (id: string) => {
      await withDb((db) => revokeApiKey(db, id))
    })
}
