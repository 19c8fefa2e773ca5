/** The body of POST /init, validated field by field; unknown fields are refused. */
export interface InitBody {
  accessToken?: string
  envVars?: Record<string, string>
  defaultUser?: string
  defaultWorkdir?: string
  timestamp?: string
}

const FIELDS = new Set(['accessToken', 'envVars', 'defaultUser', 'defaultWorkdir', 'timestamp'])

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string }

export function parseInitBody(raw: unknown): Parsed<InitBody> {
  if (raw === undefined) return { ok: true, value: {} }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, message: 'body must be a JSON object' }
  }
  const body = raw as Record<string, unknown>
  for (const key of Object.keys(body)) {
    if (!FIELDS.has(key)) return { ok: false, message: `unknown field '${key}'` }
  }
  const out: InitBody = {}
  for (const key of ['accessToken', 'defaultUser', 'defaultWorkdir', 'timestamp'] as const) {
    const v = body[key]
    if (v === undefined || v === null) continue
    if (typeof v !== 'string') return { ok: false, message: `'${key}' must be a string` }
    out[key] = v
  }
  if (out.accessToken === '') return { ok: false, message: "'accessToken' must not be empty" }
  if (out.defaultUser === '') return { ok: false, message: "'defaultUser' must not be empty" }
  if (out.defaultWorkdir !== undefined && !out.defaultWorkdir.startsWith('/')) {
    return { ok: false, message: "'defaultWorkdir' must be an absolute path" }
  }
  if (out.timestamp !== undefined && Number.isNaN(Date.parse(out.timestamp))) {
    return { ok: false, message: "'timestamp' must be an RFC 3339 date-time" }
  }
  const vars = body.envVars
  if (vars !== undefined && vars !== null) {
    if (typeof vars !== 'object' || Array.isArray(vars)) {
      return { ok: false, message: "'envVars' must be an object of strings" }
    }
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(vars)) {
      if (typeof v !== 'string') return { ok: false, message: `envVars.${k} must be a string` }
      if (k === '' || k.includes('=') || k.includes('\0') || v.includes('\0')) {
        return { ok: false, message: `invalid environment variable '${k}'` }
      }
      env[k] = v
    }
    out.envVars = env
  }
  return { ok: true, value: out }
}
