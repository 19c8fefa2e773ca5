// uploadUrl()/downloadUrl() give `{E2B_SANDBOX_URL}/files?…&signature=…`
// with no sandbox id in them. Fetched with nothing else (as curl or a
// browser would), they reach the right sandbox through the edge proxy, which
// finds it by the signature, and envd honours the signature and its expiry.
import { Sandbox, type SandboxOpts } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detail } from '../helpers/api-client.js'
import { counter, pause } from '../helpers/lifecycle.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const made: string[] = []
let a: Sandbox
let b: Sandbox

async function create(opts: SandboxOpts = {}): Promise<Sandbox> {
  const sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 300_000, ...opts })
  made.push(sbx.sandboxId)
  return sbx
}

beforeAll(async () => {
  a = await create()
  b = await create()
})
afterAll(async () => {
  for (const id of made) await Sandbox.kill(id, warren().sdk).catch(() => {})
})

/** A plain fetch: no sandbox header, no token, nothing but the URL. */
function postForm(url: string, content: string) {
  const form = new FormData()
  form.append('file', new Blob([content]), 'ignored-name')
  return fetch(url, { method: 'POST', body: form })
}
function postRaw(url: string, content: string) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: content,
  })
}

describe('signed URLs fetched without any sandbox header', () => {
  it('name no sandbox, only the proxy and a signature', async () => {
    const up = new URL(await a.uploadUrl('/home/user/x.txt'))
    expect(`${up.protocol}//${up.host}`).toBe(warren().proxyUrl)
    expect(up.pathname).toBe('/files')
    expect(up.href).not.toContain(a.sandboxId)
    expect(up.searchParams.get('signature')).toMatch(/^v1_/)
  })

  it('upload (multipart and octet-stream) and download reach the right sandbox', async () => {
    for (const [sbx, name] of [
      [a, 'a'],
      [b, 'b'],
    ] as const) {
      const form = await postForm(await sbx.uploadUrl('/home/user/form.txt'), `form ${name}`)
      expect(form.status, await form.clone().text()).toBe(200)
      expect(await form.json()).toEqual([
        { name: 'form.txt', type: 'file', path: '/home/user/form.txt' },
      ])
      const raw = await postRaw(await sbx.uploadUrl('/tmp/raw.txt'), `raw ${name}`)
      expect(raw.status, await raw.clone().text()).toBe(200)
      const down = await fetch(await sbx.downloadUrl('/home/user/form.txt'))
      expect(down.status).toBe(200)
      expect(await down.text()).toBe(`form ${name}`)
    }
    // Really written in each sandbox, as its own.
    expect(await a.files.read('/home/user/form.txt')).toBe('form a')
    expect(await b.files.read('/home/user/form.txt')).toBe('form b')
    expect(await a.files.read('/tmp/raw.txt')).toBe('raw a')
    expect(await b.files.read('/tmp/raw.txt')).toBe('raw b')
    const owner = await a.commands.run('stat -c %U /home/user/form.txt /tmp/raw.txt')
    expect(owner.stdout).toBe('user\nuser\n')
  })

  it('honour the user and path they were signed for', async () => {
    const rootUp = await a.uploadUrl('/root/signed.txt', { user: 'root' })
    expect((await postRaw(rootUp, 'as root')).status).toBe(200)
    const who = await a.commands.run('stat -c %U /root/signed.txt', { user: 'root' })
    expect(who.stdout).toBe('root\n')
    // Another path or user under the same signature matches no sandbox.
    for (const [k, v] of [
      ['path', '/home/user/other.txt'],
      ['username', 'root'],
    ]) {
      const url = new URL(await a.downloadUrl('/home/user/form.txt'))
      url.searchParams.set(k!, v!)
      const res = await fetch(url)
      expect(res.status).toBe(401)
      expect(await res.json()).toMatchObject({ code: 401, message: expect.any(String) })
    }
    // A read signature does not upload.
    expect((await postRaw(await a.downloadUrl('/home/user/form.txt'), 'x')).status).toBe(401)
    expect(await a.files.read('/home/user/form.txt')).toBe('form a')
  })

  it('with an expiration: valid until it passes, then 401', async () => {
    const up = await a.uploadUrl('/home/user/exp.txt', { useSignatureExpiration: 60 })
    expect(new URL(up).searchParams.get('signature_expiration')).toMatch(/^\d+$/)
    expect((await postRaw(up, 'in time')).status).toBe(200)
    const down = await a.downloadUrl('/home/user/exp.txt', { useSignatureExpiration: 60 })
    expect(await (await fetch(down)).text()).toBe('in time')

    const expiredUp = await a.uploadUrl('/home/user/exp.txt', { useSignatureExpiration: -10 })
    const r1 = await postRaw(expiredUp, 'too late')
    expect(r1.status).toBe(401)
    expect(await r1.json()).toMatchObject({ code: 401, message: 'signature is already expired' })
    const expiredDown = await a.downloadUrl('/home/user/exp.txt', { useSignatureExpiration: -10 })
    expect((await fetch(expiredDown)).status).toBe(401)
    expect(await a.files.read('/home/user/exp.txt')).toBe('in time')
    // An expiration that was tampered with is no longer what was signed.
    const moved = new URL(down)
    moved.searchParams.set('signature_expiration', String(Math.floor(Date.now() / 1000) + 3600))
    expect((await fetch(moved)).status).toBe(401)
  })

  it('a wrong signature is 401, and nothing is written anywhere', async () => {
    const good = new URL(await a.uploadUrl('/home/user/wrong.txt'))
    const sig = good.searchParams.get('signature')!
    for (const bad of [`${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`, 'v1_nope', 'x']) {
      const url = new URL(good)
      url.searchParams.set('signature', bad)
      const res = await postRaw(url.toString(), 'x')
      expect(res.status).toBe(401)
    }
    expect(await a.files.exists('/home/user/wrong.txt')).toBe(false)
    expect(await b.files.exists('/home/user/wrong.txt')).toBe(false)
    // And without any signature, the request names no sandbox at all.
    const bare = new URL(good)
    bare.searchParams.delete('signature')
    expect((await postRaw(bare.toString(), 'x')).status).toBe(400)
  })

  it('a paused auto-resume sandbox is woken by a valid signed URL (and not by a forged one)', async () => {
    const c = await create({ lifecycle: { onTimeout: 'pause', autoResume: true } })
    await c.files.write('/home/user/asleep.txt', 'woken')
    const down = await c.downloadUrl('/home/user/asleep.txt')
    expect(await pause(warren(), c.sandboxId)).toBe(204)
    const forged = new URL(down)
    forged.searchParams.set('signature', 'v1_forged')
    expect((await fetch(forged)).status).toBe(401)
    expect((await detail(warren(), c.sandboxId)).state).toBe('paused')
    const before = await counter(warren(), 'warren_sandboxes_resumed_total', {
      from: 'memory',
      trigger: 'traffic',
    })
    const res = await fetch(down)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('woken')
    expect((await detail(warren(), c.sandboxId)).state).toBe('running')
    expect(
      await counter(warren(), 'warren_sandboxes_resumed_total', {
        from: 'memory',
        trigger: 'traffic',
      }),
    ).toBe(before + 1)
  })

  it("a killed sandbox's URL answers as envd's port does for a killed sandbox", async () => {
    const d = await create()
    const down = await d.downloadUrl('/etc/hostname')
    expect((await fetch(down)).status).toBe(200)
    await d.kill()
    const res = await fetch(down)
    expect(res.status).toBe(502)
    expect(await res.json()).toMatchObject({ sandboxId: d.sandboxId, code: 502 })
  })
})
