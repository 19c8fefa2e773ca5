import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readMetadata, validateMetadata, writeMetadata } from './xattr.js'

describe('validateMetadata', () => {
  it.each([
    [{ a: 'b' }, undefined],
    [{ '': 'b' }, 'metadata key must not be empty'],
    [{ a: 'é' }, "metadata value for key 'a' must be printable US-ASCII"],
    [{ ['k'.repeat(247)]: '' }, `metadata key '${'k'.repeat(247)}' exceeds 246 bytes`],
    [{ a: 'x'.repeat(5000) }, 'total metadata size 5010 exceeds 4096 bytes'],
  ])('%j', (metadata, problem) => {
    expect(validateMetadata(metadata)).toBe(problem)
  })
})

describe('metadata xattrs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'envd-xattr-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('writes, replaces and reads user.e2b.* attributes', () => {
    const file = join(dir, 'f')
    writeFileSync(file, 'x')
    writeMetadata(file, { author: 'me', purpose: 'test' })
    expect(readMetadata(file)).toEqual({ author: 'me', purpose: 'test' })
    writeMetadata(file, { author: 'you' })
    expect(readMetadata(file)).toEqual({ author: 'you' })
    writeMetadata(file, {})
    expect(readMetadata(file)).toEqual({})
  })

  it('reads nothing from a missing file', () => {
    expect(readMetadata(join(dir, 'missing'))).toEqual({})
  })
})
