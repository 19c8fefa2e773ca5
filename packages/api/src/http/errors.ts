import { type Logger, toWarrenError, WarrenError } from '@warren/shared'
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ZodError } from 'zod'
import { SANDBOX_ID_PARAM } from '../routes/params.js'

/** `templateID: expected string` — the field path and what was wrong with it. */
export function describeZodError(error: ZodError): string {
  const issue = error.issues[0]
  if (!issue) return 'invalid request'
  const path = issue.path.join('.')
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `'${[...issue.path, k].join('.')}'`).join(', ')
    return `unsupported field ${keys}: Warren does not implement it`
  }
  return path ? `${path}: ${issue.message}` : issue.message
}

/**
 * Every error leaves as E2B's `{code, message}` with the matching status.
 * Unknown errors become a plain 500: the cause is logged, never sent.
 */
export function renderError(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof HTTPException) {
      const status = err.status
      return c.json({ code: status, message: err.message || 'bad request' }, status)
    }
    const w = storeFull(err) ?? toWarrenError(err)
    if (w.code === 'internal')
      log.error({ err: w.cause ?? err, path: c.req.path }, 'request failed')
    return c.json(
      { code: w.status, message: w.code === 'internal' ? 'internal error' : w.message },
      w.status as 500,
    )
  }
}

/**
 * The store's disk is full (SQLite's SQLITE_FULL, PostgreSQL's 53100): a
 * condition the operator must see named, not an anonymous 500. Nothing was
 * changed: the statement that failed was rolled back.
 */
function storeFull(err: unknown): WarrenError | undefined {
  const code = (err as { code?: unknown } | undefined)?.code
  if (code !== 'SQLITE_FULL' && code !== '53100') return undefined
  return new WarrenError('unavailable', "Warren's data disk is full; free space on it and retry", {
    cause: err,
  })
}

export function notFound(c: Context) {
  return c.json({ code: 404, message: `no route ${c.req.method} ${c.req.path}` }, 404)
}

export function validationHook(result: {
  success: boolean
  error?: ZodError
  target?: string
}): void {
  if (result.success || !result.error) return
  // A path id that could never name a sandbox is simply not found: the
  // answer is the same as for any unknown id (E2B's SDK reads 404 as "no such sandbox").
  if (
    result.target === 'param' &&
    result.error.issues.some((i) => i.path[0] === SANDBOX_ID_PARAM)
  ) {
    throw new WarrenError('not_found', 'sandbox not found')
  }
  throw new WarrenError('invalid_argument', describeZodError(result.error))
}
