import { z } from '@hono/zod-openapi'
import { isSandboxIdLike } from '@warren/shared'

/**
 * A sandbox id in a path. Any id is looked up, so an unknown one is 404 like
 * E2B's; one that could never be an id (too long, path or traversal
 * characters) is refused here — and answered 404 too (see `validationHook`):
 * whatever the shape, a client learns only that no such sandbox exists.
 */
export const SANDBOX_ID_PARAM = 'sandboxID'

export const sandboxIdParams = z.object({
  [SANDBOX_ID_PARAM]: z
    .string()
    .refine(isSandboxIdLike, 'not a sandbox id')
    .openapi({ param: { name: 'sandboxID', in: 'path' }, example: 'i1a2b3c4d5e6f7g8h9j0' }),
})

/** The longest lease a request may ask for, in seconds (one day). */
export const MAX_TIMEOUT_S = 86_400

/** Routes without query parameters refuse any: a parameter is never silently ignored. */
export const noQuery = z.strictObject({})

export const errorSchema = z
  .object({ code: z.number().int(), message: z.string() })
  .openapi('Error')

/** The error responses every authenticated route can give. */
export const errorResponses = {
  400: { description: 'Bad request', content: { 'application/json': { schema: errorSchema } } },
  401: {
    description: 'Missing or invalid API key',
    content: { 'application/json': { schema: errorSchema } },
  },
  404: { description: 'Not found', content: { 'application/json': { schema: errorSchema } } },
  409: {
    description: 'Conflicting state',
    content: { 'application/json': { schema: errorSchema } },
  },
} as const

export function jsonBody<T extends z.ZodType>(schema: T, required = true) {
  return { content: { 'application/json': { schema } }, required }
}
