// The overlay's lower layers as the boot names them: short links into the
// templates directory, and the image's /etc read from a real directory of
// a layer only (never through a symlink a layer planted).
import {
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { linkLowers, lowerEtc } from './lowers.js'

const root = mkdtempSync(join(tmpdir(), 'warren-lowers-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const templates = join(root, 'templates')
function layer(name: string, etc?: 'dir' | 'symlink' | 'file'): string {
  const dir = join(templates, name)
  mkdirSync(dir, { recursive: true })
  if (etc === 'dir') mkdirSync(join(dir, 'etc'), { mode: 0o750 })
  if (etc === 'symlink') symlinkSync('/etc', join(dir, 'etc'))
  if (etc === 'file') writeFileSync(join(dir, 'etc'), '')
  return name
}

describe('lowerEtc', () => {
  const real = layer('real', 'dir')
  const none = layer('none')
  const planted = layer('planted', 'symlink')
  const file = layer('file', 'file')
  it.each<[string, string[], number | undefined]>([
    ['the top layer with a real /etc', [none, real], 0o750],
    ['a symlinked /etc is not followed onto the host', [planted, real], undefined],
    ['a lower symlink is hidden by a real /etc above it', [real, planted], 0o750],
    ['a file named etc on top is no directory', [file, real], undefined],
    ['no layer has one', [none], undefined],
  ])('%s', (_name, layers, mode) => {
    const st = lowerEtc(templates, layers)
    expect(st && st.mode & 0o7777).toBe(mode)
  })
})

describe('linkLowers', () => {
  it('names every layer by a short relative link that reaches it', () => {
    const sandbox = join(root, 'sandboxes', 'sb1')
    mkdirSync(sandbox, { recursive: true })
    symlinkSync(templates, join(sandbox, 'templates'))
    const long = `oci/layers/v1-100000/${'a'.repeat(64)}`
    mkdirSync(join(templates, long), { recursive: true })
    const names = linkLowers(sandbox, join(sandbox, 'templates'), [long, 'real'])
    expect(names).toEqual(['l/0', 'l/1'])
    expect(readlinkSync(join(sandbox, 'l/0'))).toBe(`../templates/${long}`)
    expect(realpathSync(join(sandbox, 'l/0'))).toBe(realpathSync(join(templates, long)))
    // Again on the next boot: the old links go.
    expect(linkLowers(sandbox, join(sandbox, 'templates'), ['real'])).toEqual(['l/0'])
    expect(realpathSync(join(sandbox, 'l/0'))).toBe(realpathSync(join(templates, 'real')))
  })
})
