import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CERT_FILE, KEY_FILE, loadCa, loadOrCreateCa } from './ca-store.js'
import { readPrivateFile, writePrivateDir } from './files.js'

const dirs: string[] = []
function tmp(): string {
  const d = mkdtempSync('/tmp/warren-pki-test-')
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const mode = (p: string) => statSync(p).mode & 0o777

describe('stored CA', () => {
  it('is made once, root-only, and loaded as the same CA afterwards', async () => {
    const root = tmp()
    const dir = join(root, 'pki', 'proxy-ca')
    const first = await loadOrCreateCa(dir, { commonName: 'test' })
    expect(first.created).toBe(true)
    expect(first.certPath).toBe(join(dir, CERT_FILE))
    expect(mode(join(root, 'pki'))).toBe(0o700)
    expect(mode(dir)).toBe(0o700)
    expect(mode(join(dir, CERT_FILE))).toBe(0o600)
    expect(mode(join(dir, KEY_FILE))).toBe(0o600)
    const again = await loadOrCreateCa(dir, { commonName: 'test' })
    expect(again.created).toBe(false)
    expect(again.ca.certPem).toBe(first.ca.certPem)
  })

  it('concurrent first starts agree on one CA and leave no debris', async () => {
    const root = tmp()
    const dir = join(root, 'ca')
    const all = await Promise.all(
      Array.from({ length: 6 }, () => loadOrCreateCa(dir, { commonName: 'race' })),
    )
    expect(new Set(all.map((s) => s.ca.certPem)).size).toBe(1)
    expect(all.filter((s) => s.created)).toHaveLength(1)
    expect(readdirSync(root)).toEqual(['ca'])
    expect(readdirSync(dir).sort()).toEqual([CERT_FILE, KEY_FILE])
  })

  it('refuses a key file others can read', async () => {
    const dir = join(tmp(), 'ca')
    await loadOrCreateCa(dir, { commonName: 'test' })
    chmodSync(join(dir, KEY_FILE), 0o644)
    await expect(loadCa(dir)).rejects.toThrow(/must be owned by this user and private/)
  })

  it('writes a private directory whole or not at all', () => {
    const root = tmp()
    expect(writePrivateDir(join(root, 'd'), { a: '1', b: '2' })).toBe(true)
    expect(writePrivateDir(join(root, 'd'), { a: 'other' })).toBe(false)
    expect(readPrivateFile(join(root, 'd', 'a'))).toBe('1')
    expect(readdirSync(root)).toEqual(['d'])
    writeFileSync(join(root, 'open'), 'x', { mode: 0o640 })
    expect(() => readPrivateFile(join(root, 'open'))).toThrow(/chmod 600/)
  })
})
