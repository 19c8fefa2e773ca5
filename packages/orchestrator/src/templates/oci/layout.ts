import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { digestOf } from './digest.js'

/**
 * The layer store, all content-addressed:
 *   <into>/blobs/<alg>/<hex>           manifests, indexes and configs, verified
 *   <into>/layers/v1-<uidBase>/<hex>   one unpacked layer per diff id: an overlay lower dir
 *   <into>/tmp/<pid>-<random>          work in progress, renamed into place when whole
 * A layer's directory depends on the uid shift it was unpacked with (and on
 * the unpack format, `v1`): bump the name when either changes.
 */
export const LAYER_FORMAT = 'v1'

export function layerRel(uidBase: number, diffId: string): string {
  const [alg, hex] = diffId.split(':') as [string, string]
  return join('layers', `${LAYER_FORMAT}-${uidBase}`, alg === 'sha256' ? hex : `${alg}-${hex}`)
}

function blobPath(into: string, digest: string): string {
  const [alg, hex] = digest.split(':') as [string, string]
  return join(into, 'blobs', alg, hex)
}

/** A cached document, checked against its digest again (a damaged cache is a miss). */
export async function readBlob(into: string, digest: string): Promise<Buffer | undefined> {
  let data: Buffer
  try {
    data = await readFile(blobPath(into, digest))
  } catch {
    return undefined
  }
  return digestOf(data, digest.slice(0, digest.indexOf(':'))) === digest ? data : undefined
}

/** Stores a verified document under its digest (write, then rename). */
export async function writeBlob(into: string, digest: string, data: Buffer): Promise<void> {
  const path = blobPath(into, digest)
  await mkdir(join(path, '..'), { recursive: true })
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`
  try {
    await writeFile(tmp, data)
    await rename(tmp, path)
  } finally {
    await rm(tmp, { force: true })
  }
}

/** A private work directory on the store's filesystem (so rename publishes it). */
export async function makeTempDir(into: string): Promise<string> {
  const dir = join(into, 'tmp', `${process.pid}-${randomBytes(6).toString('hex')}`)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  return dir
}

/**
 * Publishes `dir` as `target` with one rename. If another puller got there
 * first the content is the same (same digest): theirs is kept, ours dropped.
 */
export async function publishDir(dir: string, target: string): Promise<void> {
  await mkdir(join(target, '..'), { recursive: true })
  try {
    await rename(dir, target)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !existsSync(target)) throw err
  }
}

/** Removes work directories left by pullers that died (their pid is gone). */
export async function sweepStaleTemps(into: string): Promise<void> {
  let names: string[]
  try {
    names = await readdir(join(into, 'tmp'))
  } catch {
    return
  }
  for (const name of names) {
    const pid = Number(name.split('-')[0])
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) {
      await rm(join(into, 'tmp', name), { recursive: true, force: true })
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const inflight = new Map<string, Promise<unknown>>()

/**
 * Runs `fn` once for all callers in this process asking for the same `key`
 * at the same time: concurrent pulls of one image share each download.
 */
export function shared<T>(key: string, fn: () => Promise<T>): Promise<T> {
  let job = inflight.get(key) as Promise<T> | undefined
  if (!job) {
    job = fn().finally(() => inflight.delete(key))
    inflight.set(key, job)
  }
  return job
}
