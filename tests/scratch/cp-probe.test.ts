import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { it } from 'vitest'
import { handle } from '../helpers/lifecycle.js'
import { useSandboxes } from '../helpers/sandboxes.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const sandboxes = useSandboxes(warren)

it('probe', async () => {
  const created = await sandboxes.createRaw({ timeout: 300, isolation: 'gvisor' })
  const sbx = handle(warren(), created)
  const proc = await sbx.commands.run('sleep 1000', { background: true })
  await proc.disconnect()
  await sbx.commands.run('echo hi')
  const w = warren()
  const root = join(w.dataDir, 'runsc')
  const cid = `${w.prefix}-${created.sandboxID}`
  const r = (...a: string[]) => execFileSync('runsc', ['--root', root, ...a], { encoding: 'utf8' })
  console.log('BEFORE', r('exec', cid, 'cat', '/proc/net/tcp'))
  console.log(
    'HOST',
    execFileSync('ss', ['-tan'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(':49983'))
      .join('\n'),
  )
  r('kill', cid, 'USR2')
  await new Promise((res) => setTimeout(res, 300))
  console.log('AFTER', r('exec', cid, 'cat', '/proc/net/tcp'))
  await new Promise((res) => setTimeout(res, 3500))
  console.log('LATER', r('exec', cid, 'cat', '/proc/net/tcp'))
}, 120_000)
