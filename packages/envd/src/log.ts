/**
 * JSON lines on stdout: the orchestrator stores envd's stdout as the sandbox
 * log, so every line must be one self-contained JSON object.
 */
type Level = 'debug' | 'info' | 'warn' | 'error'

export type Logger = Record<Level, (msg: string, fields?: Record<string, unknown>) => void>

function write(level: Level, msg: string, fields?: Record<string, unknown>): void {
  const line: Record<string, unknown> = { ts: new Date().toISOString(), level, msg }
  if (fields) {
    for (const [k, v] of Object.entries(fields)) {
      line[k] = v instanceof Error ? { name: v.name, message: v.message } : v
    }
  }
  process.stdout.write(`${JSON.stringify(line)}\n`)
}

export const log: Logger = {
  debug: (msg, fields) => {
    if (process.env.ENVD_DEBUG) write('debug', msg, fields)
  },
  info: (msg, fields) => write('info', msg, fields),
  warn: (msg, fields) => write('warn', msg, fields),
  error: (msg, fields) => write('error', msg, fields),
}
