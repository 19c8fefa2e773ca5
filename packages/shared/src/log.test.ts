import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { componentLogger, createLogger } from './log.js'
import { withRequestId } from './request-id.js'

/** Every line written, raw (JSON.parse would hide a duplicate key by keeping the last). */
function capture() {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean))
      cb()
    },
  })
  return { lines, stream }
}

/** The top-level keys of a JSON object line, in order, duplicates included. */
function topLevelKeys(line: string): string[] {
  const keys: string[] = []
  let depth = 0
  let inString = false
  let start = -1
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]
    if (inString) {
      if (ch === '\\') i++
      else if (ch === '"') {
        inString = false
        if (depth === 1 && line[i + 1] === ':') keys.push(line.slice(start + 1, i))
      }
    } else if (ch === '"') {
      inString = true
      start = i
    } else if (ch === '{' || ch === '[') depth++
    else if (ch === '}' || ch === ']') depth--
  }
  return keys
}

describe('JSON log lines', () => {
  it('name their component once, also for the components of one process', () => {
    const { lines, stream } = capture()
    const warren = createLogger('warren', 'info', stream)
    const api = componentLogger(warren, 'api')
    const node = componentLogger(warren, 'orchestrator')
    warren.info('up')
    api.info({ sandboxId: 's0' }, 'one')
    node.child({ sandboxId: 's1' }).warn('two')
    expect(lines).toHaveLength(3)
    for (const line of lines) {
      const keys = topLevelKeys(line)
      expect(
        keys.filter((k) => k === 'component'),
        line,
      ).toHaveLength(1)
      expect(new Set(keys).size, line).toBe(keys.length)
    }
    expect(lines.map((l) => JSON.parse(l).component)).toEqual(['warren', 'api', 'orchestrator'])
    expect(JSON.parse(lines[0]!).component).toBe('warren')
  })

  it('carry the request id of the request being handled, and none outside one', async () => {
    const { lines, stream } = capture()
    const log = createLogger('api', 'info', stream)
    log.info('before')
    await withRequestId('req-123', async () => {
      await new Promise((r) => setTimeout(r, 5))
      log.info('inside, after an await')
    })
    log.info('after')
    expect(lines.map((l) => JSON.parse(l).requestId)).toEqual([undefined, 'req-123', undefined])
    for (const line of lines) {
      const keys = topLevelKeys(line)
      expect(new Set(keys).size, line).toBe(keys.length)
    }
  })

  it('are read by the key finder as written', () => {
    expect(topLevelKeys('{"a":1,"b":{"a":2},"c":"x\\"a\\":","a":3}')).toEqual(['a', 'b', 'c', 'a'])
  })
})
