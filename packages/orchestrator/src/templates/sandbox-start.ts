import type { NodeContext } from '../context.js'
import type { Placed } from '../host/node-host.js'
import type { NetworkSlot } from '../network/slots.js'
import { destroySandbox } from '../sandboxes/destroy.js'
import type { TemplateMetadata } from './metadata.js'
import { startTemplateCommands } from './start-cmd.js'

/**
 * Boots a sandbox, then runs its template's start command and waits for its
 * ready command, so a create (or a cold resume, whose processes are new)
 * returns a sandbox that already serves. A create whose start fails removes
 * the sandbox it booted; a resume keeps its sandbox (its files are the
 * user's) and only logs the failure.
 */
export async function withTemplateCommands(
  ctx: NodeContext,
  template: TemplateMetadata,
  accessToken: string | undefined,
  boot: () => Promise<Placed & { slot: NetworkSlot }>,
  opts: { resume?: boolean } = {},
): Promise<Placed & { slot: NetworkSlot }> {
  const placed = await boot()
  // Restored processes are the snapshot's: its start command runs already.
  if ((!template.startCmd && !template.readyCmd) || placed.record.restoredFrom === 'memory')
    return placed
  try {
    await startTemplateCommands(
      { host: placed.slot.sandboxIp, port: ctx.cfg.readyPort, accessToken },
      template,
    )
    return placed
  } catch (err) {
    if (opts.resume) {
      ctx.log.warn({ err, sandboxId: placed.record.sandboxId }, 'start command failed on resume')
      return placed
    }
    for (const e of await destroySandbox(ctx, placed.record.sandboxId, placed.slot))
      ctx.log.error({ err: e, sandboxId: placed.record.sandboxId }, 'rollback step failed')
    throw err
  }
}
