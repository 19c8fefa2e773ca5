import { z } from '@hono/zod-openapi'

export const templateIdParams = z.object({
  templateID: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: 'templateID', in: 'path' }, example: 'my-template' }),
})

export const buildParams = templateIdParams.extend({
  buildID: z
    .string()
    .uuid()
    .openapi({ param: { name: 'buildID', in: 'path' } }),
})

/** A template name (E2B's alias): lowercase letters, digits, '-', '_' and '.'. */
export const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_.-]{0,127}$/
export const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}$/

/** `name` or `name:tag` as E2B's v3 request and tag targets give it. */
export function splitNameTag(value: string): { name: string; tag?: string } {
  const colon = value.indexOf(':')
  return colon === -1
    ? { name: value }
    : { name: value.slice(0, colon), tag: value.slice(colon + 1) }
}

/** The built-in template every team may use; its name cannot be taken. */
export const BUILT_IN = 'base'
