// Lifecycle events from a real `warren up` over real sockets: the SDK's
// create and kill reach an open GET /events stream and a webhook receiver
// on loopback (WARREN_WEBHOOK_ALLOW_PRIVATE, as a self-hoster's internal
// receiver would need), signed.
import { createHmac } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Sandbox } from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, sleep } from '../helpers/api-client.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren({ env: { WARREN_WEBHOOK_ALLOW_PRIVATE: 'true' } })
const sandboxes = useSandboxes(warren)

const received: Array<{ signature: string; body: string }> = []
const receiver = createServer((req, res) => {
  let body = ''
  req.on('data', (c: Buffer) => {
    body += c.toString()
  })
  req.on('end', () => {
    received.push({ signature: String(req.headers['warren-signature']), body })
    res.writeHead(204).end()
  })
})
beforeAll(() => new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r)))
afterAll(() => new Promise<void>((r) => receiver.close(() => r())))

describe('lifecycle events of a running Warren', () => {
  it('reach an event stream and a webhook, in order', async () => {
    const port = (receiver.address() as AddressInfo).port
    const hook = await api(warren(), 'POST', '/webhooks', {
      json: { url: `http://127.0.0.1:${port}/hook`, kinds: ['created', 'killed'] },
    })
    expect(hook.status, hook.text).toBe(201)
    const secret = (hook.body as { secret: string }).secret

    const ctl = new AbortController()
    const stream = await fetch(`${warren().apiUrl}/events`, {
      headers: { 'x-api-key': warren().apiKey },
      signal: ctl.signal,
    })
    expect(stream.status).toBe(200)
    const reader = stream.body!.getReader()
    let text = ''
    const readUntil = async (needle: RegExp) => {
      const end = Date.now() + 20_000
      while (!needle.test(text) && Date.now() < end) {
        const { value, done } = await reader.read()
        if (done) break
        text += new TextDecoder().decode(value)
      }
      return needle.test(text)
    }
    expect(await readUntil(/^: events/m)).toBe(true)

    const sbx = await Sandbox.create({ ...warren().sdk, metadata: { suite: 'events-e2e' } })
    sandboxes.add(sbx.sandboxId)
    await sbx.kill()
    expect(await readUntil(/"kind":"killed"/)).toBe(true)
    ctl.abort()
    const events = text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as { kind: string; sandboxId: string })
    expect(events.map((e) => [e.kind, e.sandboxId])).toEqual([
      ['created', sbx.sandboxId],
      ['killed', sbx.sandboxId],
    ])

    const end = Date.now() + 20_000
    while (received.length < 2 && Date.now() < end) await sleep(100)
    expect(received.map((r) => JSON.parse(r.body).kind)).toEqual(['created', 'killed'])
    for (const r of received) {
      const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(r.signature) ?? []
      expect(createHmac('sha256', secret).update(`${t}.${r.body}`).digest('hex')).toBe(v1)
    }
  })
})
