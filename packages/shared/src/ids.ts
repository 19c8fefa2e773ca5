import { randomBytes } from 'node:crypto'
import { WarrenError } from './errors.js'

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'
const SANDBOX_ID = /^[a-z0-9]{20}$/

/** Sandbox ids look like E2B's: 20 lowercase alphanumerics, safe in hostnames. */
export function newSandboxId(): string {
  let id = ''
  while (id.length < 20) {
    // 252 = 7 * 36: dropping bytes at or above it keeps the distribution uniform.
    for (const b of randomBytes(24)) if (b < 252 && id.length < 20) id += ALPHABET[b % 36]
  }
  return id
}

export function isSandboxId(value: string): boolean {
  return SANDBOX_ID.test(value)
}

// Letters, digits, '-' and '_': no path, query or traversal characters, and short.
const SANDBOX_ID_LIKE = /^[A-Za-z0-9_-]{1,64}$/

/**
 * Whether a client-supplied id is worth looking up. Ids Warren issues are
 * `isSandboxId`, but a client may name any id (E2B answers "not found" for
 * `Sandbox.kill('some-id')`, not "bad request"), so the edges look up every
 * id of this shape and answer anything else as not found without a lookup.
 */
export function isSandboxIdLike(value: string): boolean {
  return SANDBOX_ID_LIKE.test(value)
}

export function parseSandboxId(value: string): string {
  if (!isSandboxId(value)) {
    throw new WarrenError('invalid_argument', `invalid sandbox id '${value.slice(0, 64)}'`)
  }
  return value
}

const TEMPLATE_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/

/** A build of a template (the API's UUIDs, a recipe hash): one safe path component. */
export function parseBuildId(value: string): string {
  if (!TEMPLATE_ID.test(value)) {
    throw new WarrenError('invalid_argument', `invalid build id '${value.slice(0, 64)}'`)
  }
  return value
}

export function parseTemplateId(value: string): string {
  if (!TEMPLATE_ID.test(value)) {
    throw new WarrenError('invalid_argument', `invalid template id '${value.slice(0, 64)}'`)
  }
  return value
}

/** Random token for envd access and traffic access, url-safe. */
export function newToken(bytes = 24): string {
  return randomBytes(bytes).toString('base64url')
}
