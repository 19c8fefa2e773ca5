import { createApiKey, ensureDefaultTeam, listApiKeys, revokeApiKey } from '@warren/api'
import type { Command } from 'commander'
import { print, printOne } from '../lib/output.js'
import { withDb } from '../lib/store.js'

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage API keys (in the local store)')

  keys
    .command('create')
    .option('-n, --name <name>', 'a name to recognise the key by', 'cli')
    .option('--json', 'machine-readable output')
    .description('create an API key for the default team; the key is shown once')
    .action(async (opts: { name: string; json?: boolean }) => {
      await withDb(async (db, cfg) => {
        const team = await ensureDefaultTeam(db, cfg)
        const { key, info } = await createApiKey(db, team.id, opts.name)
        if (opts.json) printOne({ ...info, key }, true)
        else process.stdout.write(`${key}\n(id ${info.id}; shown once, stored hashed)\n`)
      })
    })

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
