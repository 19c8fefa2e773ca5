// Servers in a real sandbox are reachable from the host at the sandbox's
// address, whether they bind every address or only 127.0.0.1 inside.
import { expect, it } from 'vitest'
import { type SandboxRecord, useNodeFixture } from '../helpers/node-fixture.js'
import { underGvisor } from '../helpers/test-isolation.js'
import { hostGet, sh, waitFor } from './helpers.js'

const fixture = useNodeFixture()

async function serve(record: SandboxRecord, cmd: string, url: string): Promise<void> {
  const sbx = fixture().sdk(record)
  await sh(sbx, 'mkdir -p ~/www && echo hello-from-sandbox > ~/www/index.html')
  await sbx.commands.run(cmd, { background: true, cwd: '/home/user/www' })
  await waitFor(async () => (await hostGet(url)) === 200, url)
}

it('reaches a server on every address of the sandbox from the host', async () => {
  const r = await fixture().create()
  const url = `http://${r.sandboxIp}:8000/index.html`
  await serve(r, 'python3 -m http.server 8000', url)
  const res = await fetch(url)
  expect(res.status).toBe(200)
  expect(await res.text()).toBe('hello-from-sandbox\n')
})

// Under gVisor the sandbox's loopback is gVisor's own: the namespace's DNAT that
// reaches a 127.0.0.1 server under runc sees none of its packets (docs/architecture.md, "gVisor").
it.skipIf(underGvisor)('reaches a server bound to 127.0.0.1 inside on the same port', async () => {
  const r = await fixture().create()
  const url = `http://${r.sandboxIp}:8081/index.html`
  await serve(r, 'python3 -m http.server 8081 --bind 127.0.0.1', url)
  const res = await fetch(url)
  expect(res.status).toBe(200)
  expect(await res.text()).toBe('hello-from-sandbox\n')
  // It really is bound to loopback only inside.
  const listening = await sh(fixture().sdk(r), 'ss -Hltn sport = :8081')
  expect(listening).toContain('127.0.0.1:8081')
})

it('reaches a root server on a privileged port', async () => {
  const r = await fixture().create()
  const sbx = fixture().sdk(r)
  await sbx.commands.run('python3 -m http.server 80 --directory /etc', {
    background: true,
    user: 'root',
  })
  await waitFor(async () => (await hostGet(`http://${r.sandboxIp}/hostname`)) === 200, 'port 80')
  expect(await (await fetch(`http://${r.sandboxIp}/hostname`)).text()).toBe(`${r.sandboxId}\n`)
})
