// A real OCI registry for tests: Debian's docker-registry (distribution
// 2.8) on a free loopback port with its storage in a temp dir, optionally
// behind htpasswd Basic auth or a token service, optionally redirecting blob
// downloads to a separate "blob storage" host (127.0.0.2) as Docker Hub does.
// Tests push images they build themselves (tests/helpers/oci-image.ts); the
// registry's own access log says which requests it served.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { afterAll, beforeAll } from 'vitest'
import type { Blob, Image } from './oci-image.js'
import { type BlobRequest, freePort, ready, send, serveBlobs } from './registry-http.js'
import { startTokenService, type TokenService, type TokenUser } from './registry-token.js'

export type RegistryAuth =
  | { kind: 'htpasswd'; users: Record<string, string> }
  | { kind: 'token'; users: Record<string, TokenUser>; anonymous?: string[] }

export interface RegistryOptions {
  auth?: RegistryAuth
  /** Blob GETs answer 307 to a blob server on 127.0.0.2, a different origin. */
  redirectBlobs?: boolean
}

export interface AccessEntry {
  method: string
  path: string
  status: number
}

export interface TestRegistry {
  /** host:port, e.g. 127.0.0.1:41234 — a loopback registry, so plain HTTP. */
  host: string
  storage: string
  token?: TokenService
  /** Requests the blob server got, and whether they carried an Authorization header. */
  blobRequests: BlobRequest[]
  /** The registry's access log since the last clear (waits for it to settle). */
  requests(): Promise<AccessEntry[]>
  clearRequests(): Promise<void>
  pushBlob(repo: string, blob: Blob): Promise<void>
  pushManifest(repo: string, reference: string, manifest: Blob): Promise<void>
  pushImage(repo: string, tag: string, image: Image): Promise<void>
  pushIndex(repo: string, tag: string, index: Blob, images: Image[]): Promise<void>
  /** The file the registry serves a blob from. */
  blobFile(digest: string): string
  stop(): Promise<void>
}

const PUSHER = 'warren-test-pusher'

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'warren-registry-'))
  const storage = join(dir, 'storage')
  const pusherPassword = randomBytes(12).toString('hex')
  let child: ChildProcess | undefined
  let token: TokenService | undefined
  let blobServer: Server | undefined
  const blobRequests: TestRegistry['blobRequests'] = []
  const lines: string[] = []
  let lastLine = Date.now()
  const stop = async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child?.once('exit', r))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
    await token?.close()
    await new Promise((r) => (blobServer ? blobServer.close(r) : r(undefined)))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    let authConfig = ''
    if (opts.auth?.kind === 'htpasswd') {
      const users = { ...opts.auth.users, [PUSHER]: pusherPassword }
      const htpasswd = Object.entries(users).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}`)
      writeFileSync(join(dir, 'htpasswd'), `${htpasswd.join('\n')}\n`)
      authConfig = `auth:\n  htpasswd:\n    realm: warren-test\n    path: ${join(dir, 'htpasswd')}\n`
    } else if (opts.auth?.kind === 'token') {
      token = await startTokenService(
        dir,
        { ...opts.auth.users, [PUSHER]: { password: pusherPassword, actions: ['pull', 'push'] } },
        opts.auth.anonymous,
      )
      authConfig = `auth:\n  token:\n    realm: ${token.realm}\n    service: ${token.service}\n    issuer: ${token.issuer}\n    rootcertbundle: ${token.certPath}\n`
    }
    let middleware = ''
    if (opts.redirectBlobs) {
      blobServer = await serveBlobs(storage, blobRequests)
      const { port } = blobServer.address() as AddressInfo
      middleware = `middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: http://127.0.0.2:${port}\n`
    }
    for (let attempt = 0; ; attempt++) {
      const port = await freePort()
      const config = join(dir, 'config.yml')
      writeFileSync(
        config,
        `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: ${randomBytes(16).toString('hex')}\n${authConfig}${middleware}`,
      )
      child = spawn('/usr/bin/docker-registry', ['serve', config], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      const onData = (b: Buffer) => {
        lastLine = Date.now()
        lines.push(...b.toString().split('\n').filter(Boolean))
      }
      child.stdout?.on('data', onData)
      child.stderr?.on('data', onData)
      if (await ready(`127.0.0.1:${port}`, child)) {
        const host = `127.0.0.1:${port}`
        const auth = pusherAuth(opts.auth, token, pusherPassword)
        return registryHandle({
          host,
          storage,
          token,
          blobRequests,
          lines,
          auth,
          stop,
          last: () => lastLine,
        })
      }
      if (attempt >= 2)
        throw new Error(`docker-registry did not start:\n${lines.slice(-20).join('\n')}`)
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** One registry per test file: started before its tests, stopped after them. */
export function useRegistry(opts: RegistryOptions = {}): () => TestRegistry {
  let registry: TestRegistry | undefined
  beforeAll(async () => {
    registry = await startRegistry(opts)
  })
  afterAll(async () => {
    await registry?.stop()
  })
  return () => {
    if (!registry) throw new Error('registry not started')
    return registry
  }
}

function registryHandle(ctx: {
  host: string
  storage: string
  token: TokenService | undefined
  blobRequests: TestRegistry['blobRequests']
  lines: string[]
  auth: (repo: string) => Promise<string | undefined>
  stop: () => Promise<void>
  last: () => number
}): TestRegistry {
  let from = 0
  const settle = async () => {
    // The access log is written just after each response: wait for quiet.
    while (Date.now() - ctx.last() < 300) await new Promise((r) => setTimeout(r, 100))
  }
  const call = async (
    repo: string,
    method: string,
    path: string,
    body?: Blob,
    headers: Record<string, string> = {},
  ) => {
    const authorization = await ctx.auth(repo)
    return send(ctx.host, method, path, body, {
      ...headers,
      ...(authorization ? { authorization } : {}),
    })
  }
  const handle: TestRegistry = {
    host: ctx.host,
    storage: ctx.storage,
    ...(ctx.token ? { token: ctx.token } : {}),
    blobRequests: ctx.blobRequests,
    async requests() {
      await settle()
      return ctx.lines.slice(from).flatMap((line) => {
        const m = /"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d{3})/.exec(line)
        return m ? [{ method: m[1]!, path: m[2]!, status: Number(m[3]) }] : []
      })
    },
    async clearRequests() {
      await settle()
      from = ctx.lines.length
      ctx.blobRequests.length = 0
    },
    async pushBlob(repo, blob) {
      const head = await call(repo, 'HEAD', `/v2/${repo}/blobs/${blob.digest}`)
      if (head.status === 200) return
      const start = await call(repo, 'POST', `/v2/${repo}/blobs/uploads/`)
      if (start.status !== 202) throw new Error(`upload start: ${start.status} ${start.body}`)
      const loc = new URL(start.headers.location ?? '', `http://${ctx.host}`)
      loc.searchParams.set('digest', blob.digest)
      const put = await call(repo, 'PUT', loc.pathname + loc.search, blob, {
        'content-type': 'application/octet-stream',
      })
      if (put.status !== 201) throw new Error(`upload ${blob.digest}: ${put.status} ${put.body}`)
    },
    async pushManifest(repo, reference, manifest) {
      const res = await call(repo, 'PUT', `/v2/${repo}/manifests/${reference}`, manifest, {
        'content-type': manifest.mediaType,
      })
      if (res.status !== 201) throw new Error(`manifest ${reference}: ${res.status} ${res.body}`)
    },
    async pushImage(repo, tag, image) {
      for (const layer of image.layers) await handle.pushBlob(repo, layer)
      await handle.pushBlob(repo, image.config)
      await handle.pushManifest(repo, tag, image.manifest)
    },
    async pushIndex(repo, tag, index, images) {
      for (const image of images) await handle.pushImage(repo, image.manifest.digest, image)
      await handle.pushManifest(repo, tag, index)
    },
    blobFile(digest) {
      const hex = digest.slice('sha256:'.length)
      return join(ctx.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data')
    },
    stop: ctx.stop,
  }
  return handle
}

/** How the helper itself authenticates to push: Basic, or a push token per repository. */
function pusherAuth(
  auth: RegistryAuth | undefined,
  token: TokenService | undefined,
  password: string,
): (repo: string) => Promise<string | undefined> {
  const basic = `Basic ${Buffer.from(`${PUSHER}:${password}`).toString('base64')}`
  const tokens = new Map<string, string>()
  return async (repo) => {
    if (!auth) return undefined
    if (auth.kind === 'htpasswd' || !token) return basic
    let t = tokens.get(repo)
    if (!t) {
      const scope = encodeURIComponent(`repository:${repo}:pull,push`)
      const res = await fetch(`${token.realm}?service=${token.service}&scope=${scope}`, {
        headers: { authorization: basic },
      })
      t = `Bearer ${((await res.json()) as { token: string }).token}`
      tokens.set(repo, t)
    }
    return t
  }
}
