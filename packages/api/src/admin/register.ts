import { requireAdmin, requireApiKey } from '../http/auth.js'
import type { Db } from '../store/db.js'
import type { AdminApp, AdminDeps } from './common.js'
import { registerAdminKeys } from './keys.js'
import { registerAdminNodes } from './nodes.js'
import { registerAdminTeams } from './teams.js'

/**
 * The operators' API under /admin: teams and their limits, their keys, the
 * nodes. Every route takes an admin key (403 for any other valid key).
 */
export function registerAdmin(app: AdminApp, deps: AdminDeps & { db: Db }): void {
  app.use('/admin/*', requireApiKey(deps.db), requireAdmin)
  registerAdminTeams(app, deps)
  registerAdminKeys(app, deps)
  registerAdminNodes(app, deps)
}
