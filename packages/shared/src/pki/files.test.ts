import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readOrCreatePrivateFile } from './files.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
function tmp(): string {
  const d = mkdtempSync('/tmp/warren-files-test-')
  dirs.push(d)
  return d
}

describe('readOrCreatePrivateFile', () => {
  it('writes the file once, 0600, and reads it back afterwards', () => {
    const path = join(tmp(), 'sub', 'key')
    expect(readOrCreatePrivateFile(path, () => 'first')).toBe('first')
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readOrCreatePrivateFile(path, () => 'second')).toBe('first')
  })

  it("gives a caller that lost the race the winner's content, leaving no temporary file", () => {
    const dir = tmp()
    const path = join(dir, 'key')
    // The winner lands while the loser is writing its own candidate.
    const got = readOrCreatePrivateFile(path, () => {
      readOrCreatePrivateFile(path, () => 'winner')
      return 'loser'
    })
    expect(got).toBe('winner')
    expect(readdirSync(dir)).toEqual(['key'])
  })
})
