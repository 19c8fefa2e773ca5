import { open } from 'node:fs/promises'

export interface LogLine {
  timestamp: number
  line: string
  level: string
  message: string
  fields: Record<string, string>
}

const MAX_READ = 4 * 2 ** 20

/**
 * Reads the end of a sandbox log (at most 4 MiB): envd writes JSON lines
 * (`{ts, level, msg, ...}`); anything else (runc, tini) is kept as a plain line.
 */
export async function readLogLines(
  path: string,
  startMs: number,
  limit: number,
): Promise<LogLine[]> {
  let text: string
  try {
    const file = await open(path, 'r')
    try {
      const { size } = await file.stat()
      const length = Math.min(size, MAX_READ)
      const buf = Buffer.alloc(length)
      await file.read(buf, 0, length, size - length)
      text = buf.toString('utf8')
    } finally {
      await file.close()
    }
  } catch {
    return []
  }
  const out: LogLine[] = []
  let lastTs = 0
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue
    const parsed = parseLine(raw, lastTs)
    lastTs = parsed.timestamp
    if (parsed.timestamp >= startMs) out.push(parsed)
  }
  return out.slice(-limit)
}

function parseLine(raw: string, fallbackTs: number): LogLine {
  try {
    const obj = JSON.parse(raw) as Record<string, unknown>
    if (obj && typeof obj === 'object' && typeof obj.msg === 'string') {
      const { ts, level, msg, ...rest } = obj
      const timestamp = typeof ts === 'string' ? Date.parse(ts) : fallbackTs
      const fields = Object.fromEntries(
        Object.entries(rest).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
      )
      return {
        timestamp: Number.isNaN(timestamp) ? fallbackTs : timestamp,
        line: raw,
        level: String(level ?? 'info'),
        message: msg,
        fields,
      }
    }
  } catch {
    // not JSON
  }
  const runcTime = /time="([^"]+)"/.exec(raw)?.[1]
  const ts = runcTime ? Date.parse(runcTime) : fallbackTs
  return {
    timestamp: Number.isNaN(ts) ? fallbackTs : ts,
    line: raw,
    level: raw.includes('level=error') ? 'error' : 'info',
    message: raw,
    fields: {},
  }
}
