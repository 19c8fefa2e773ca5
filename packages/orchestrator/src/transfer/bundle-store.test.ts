import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { type BundleManifest, WarrenError } from '@warren/shared'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { BundleStore } from './bundle-store.js'
import { type BundleSource, fetchBundle, storeSource } from './sources.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'warren-bundles-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const bytes = (s: string) => Readable.from([Buffer.from(s)])
const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const blobs = (store: BundleStore) => readdirSync(join(store.root, 'blobs'))

function manifest(id: string, files: BundleManifest['files']): BundleManifest {
  return {
    version: 1,
    kind: 'sandbox',
    id,
    createdAt: new Date().toISOString(),
    metadata: {},
    files,
  }
}

describe('BundleStore', () => {
  it('names a blob by its sha256 and keeps one copy of equal contents', async () => {
    const store = new BundleStore(join(dir, 's'))
    const a = await store.put(bytes('layer'), 'upper.tar')
    const b = await store.put(bytes('layer'), 'other.tar')
    expect(a).toEqual({ name: 'upper.tar', sha256: sha('layer'), size: 5 })
    expect(b.sha256).toBe(a.sha256)
    expect(blobs(store)).toEqual([sha('layer')])
  })

  it.each([
    ['other contents, same size', 'LAYER', 5],
    ['longer than promised', 'layer and more', 5],
    ['shorter than promised', 'lay', 5],
  ])('refuses a blob that arrives %s, and keeps nothing of it', async (_, sent, size) => {
    const store = new BundleStore(join(dir, 's'))
    const expected = { name: 'upper.tar', sha256: sha('layer'), size }
    const err = await store.put(bytes(sent), 'upper.tar', expected).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WarrenError)
    expect((err as WarrenError).code).toBe('data_loss')
    expect(blobs(store)).toEqual([])
  })

  it('removes a bundle with the blobs no other manifest names', async () => {
    const store = new BundleStore(join(dir, 's'))
    const shared = await store.put(bytes('shared'), 'a.tar')
    const own = await store.put(bytes('own'), 'b.tar')
    const one = manifest('one', [shared, own])
    await store.writeManifest(one)
    await store.writeManifest(manifest('two', [shared]))
    store.removeBundle(one, 0)
    expect(store.readManifest('sandbox', 'one')).toBeUndefined()
    expect(blobs(store)).toEqual([shared.sha256])
  })

  it('leaves young unnamed blobs to a later sweep on a shared store (a writer may be between steps)', async () => {
    const store = new BundleStore(join(dir, 's'))
    const pending = await store.put(bytes('being published'), 'a.tar')
    const gone = manifest('gone', [])
    await store.writeManifest(gone)
    store.removeBundle(gone)
    expect(blobs(store)).toEqual([pending.sha256])
  })

  it('refuses a manifest that is not one', () => {
    const store = new BundleStore(join(dir, 's'))
    const path = join(dir, 's', 'sandbox')
    mkdirSync(path, { recursive: true })
    writeFileSync(join(path, 'bad.json'), JSON.stringify({ version: 2 }))
    expect(() => store.readManifest('sandbox', 'bad')).toThrow(/invalid manifest/)
  })
})

describe('fetchBundle', () => {
  async function published(id: string, contents: string) {
    const store = new BundleStore(join(dir, `src-${id}`))
    const file = await store.put(bytes(contents), 'upper.tar')
    await store.writeManifest(manifest(id, [file]))
    return { store, file }
  }
  const unreachable: BundleSource = {
    name: 'a node that is down',
    manifest: () => Promise.reject(new WarrenError('unavailable', 'down')),
    open: () => Promise.reject(new WarrenError('unavailable', 'down')),
  }

  it('takes the first source that has it, past one that is unreachable', async () => {
    const { store } = await published('s1', 'files')
    const into = new BundleStore(join(dir, 'into'))
    const got = await fetchBundle([unreachable, storeSource(store, 'store')], 'sandbox', 's1', into)
    expect(got.from).toBe('store')
    expect(blobs(into)).toEqual([sha('files')])
  })

  it('stops at data that does not match its hash, and keeps nothing of it', async () => {
    const { store, file } = await published('s2', 'files')
    writeFileSync(store.blobPath(file.sha256), 'FILES')
    const into = new BundleStore(join(dir, 'into'))
    const good = (await published('s2b', 'files')).store
    const err = await fetchBundle(
      [storeSource(store, 'corrupted store'), storeSource(good, 'good')],
      'sandbox',
      's2',
      into,
    ).catch((e: unknown) => e)
    expect((err as WarrenError).code).toBe('data_loss')
    expect(readdirSync(join(into.root, 'blobs'))).toEqual([])
  })

  it('is unavailable when no source has it', async () => {
    const into = new BundleStore(join(dir, 'into'))
    const err = await fetchBundle([unreachable], 'sandbox', 'nowhere', into).catch(
      (e: unknown) => e,
    )
    expect((err as WarrenError).code).toBe('unavailable')
  })
})
