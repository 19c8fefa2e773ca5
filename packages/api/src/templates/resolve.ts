import { type Isolation, parseTemplateId, WarrenError } from '@warren/shared'
import type { Db } from '../store/db.js'
import { findTemplate, isCustomTemplate } from '../store/templates.js'

/**
 * The node template a create names: one of the team's templates (by id,
 * name or `name:tag`) once it has a ready build — with a tag, the build the
 * tag names, else the current one — or a built-in template id (`base`)
 * that the node checks. Another team's template is not found, exactly like
 * one that does not exist.
 */
export async function resolveTemplateRef(
  db: Db,
  teamId: string,
  ref: string,
): Promise<{ templateId: string; buildId?: string; isolation?: Isolation }> {
  const found = await findTemplate(db, teamId, ref)
  if (found) {
    if (!found.template.buildId)
      throw new WarrenError('not_found', `template '${ref.slice(0, 64)}' has no ready build yet`)
    return {
      templateId: found.template.id,
      ...(found.tagBuildId ? { buildId: found.tagBuildId } : {}),
      ...(found.template.isolation ? { isolation: found.template.isolation } : {}),
    }
  }
  const id = parseTemplateId(ref)
  if (await isCustomTemplate(db, id))
    throw new WarrenError('not_found', `template '${id}' not found`)
  return { templateId: id }
}
